"""Conversion of a runtime-scaled twin's Adam state into w-coordinates.

A ProGAN-style checkpoint stores ``v`` and the state of Adam on ``v``. The
weights convert with :func:`~eqlr_optim.remove_runtime_scaling`; the moments
convert too, because ``m_v = c * m_w`` and ``s_v = c**2 * s_w``. Loading the
twin's state into :class:`~eqlr_optim.EqualizedAdam` unconverted would resume on
another trajectory without an error.
"""

import math

import torch
from torch import nn

from .runtime import runtime_parameters
from .scales import equalized_scale

__all__ = ["load_runtime_adam_state"]

_FIRST_MOMENTS = ("exp_avg",)
_SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")


def _optimizer_scales(optimizer: torch.optim.Optimizer) -> dict[int, float]:
    """Return the constant c that ``optimizer`` applies to each tensor, by id."""
    scales = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if "gain" in group:
                c = equalized_scale(
                    p.shape, group["gain"], group["lr_mul"], group["scale"]
                )
            else:
                c = 1.0
            scales[id(p)] = c
    return scales


@torch.no_grad()
def load_runtime_adam_state(
    optimizer: torch.optim.Optimizer,
    runtime_optimizer: torch.optim.Optimizer,
    plain: nn.Module,
    twin: nn.Module,
) -> None:
    """Copy the Adam state of ``twin``'s parameters into ``optimizer`` for ``plain``.

    ``runtime_optimizer`` is a :class:`torch.optim.Adam` over ``twin``, and
    ``optimizer`` an :class:`~eqlr_optim.EqualizedAdam` over ``plain``, the same
    network with the effective weights (as :func:`remove_runtime_scaling` makes
    it). ``exp_avg`` is divided by c and ``exp_avg_sq`` and ``max_exp_avg_sq`` by
    c², and ``step`` is copied. The hyperparameters are not copied: give
    ``optimizer`` the twin's lr, betas, eps and weight decay.

    Raises ValueError, before changing any state, if a parameter of ``plain`` is
    not in ``optimizer`` or if ``optimizer`` gives it another constant than the
    twin does.
    """
    scales = _optimizer_scales(optimizer)
    converted = {}
    for name, w, v, c in runtime_parameters(plain, twin):
        if id(w) not in scales:
            raise ValueError(
                f"parameter {name!r} of the plain model is not in optimizer"
            )
        if not math.isclose(scales[id(w)], c, rel_tol=1e-12):
            raise ValueError(
                f"optimizer gives parameter {name!r} the constant c = "
                f"{scales[id(w)]!r}, but the twin scales it by {c!r}; give its group "
                "the twin's gain, lr_mul or scale"
            )
        state = runtime_optimizer.state.get(v)
        if not state:
            continue
        entry = {}
        for key, value in state.items():
            if key in _FIRST_MOMENTS:
                value = value / c
            elif key in _SECOND_MOMENTS:
                value = value / (c * c)
            else:
                value = value.clone() if isinstance(value, torch.Tensor) else value
            entry[key] = value
        converted[w] = entry

    for w, entry in converted.items():
        optimizer.state[w] = entry
