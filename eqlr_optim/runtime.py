"""The runtime formulation: layers that store v and multiply by c in every pass.

This is ProGAN's equalized learning rate as GAN codebases write it, built from
plain modules with :mod:`torch.nn.utils.parametrize`. It serves as the reference
that :class:`~eqlr_optim.EqualizedAdam` is tested against, and converts weights
between the two coordinates: ``w = c * v`` (effective) and ``v`` (stored).
"""

import copy
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .scales import DEFAULT_GAIN, check_positive_finite, equalized_scale

__all__ = [
    "RuntimeScale",
    "effective_weight",
    "remove_runtime_scaling",
    "runtime_parameters",
    "runtime_scaled",
    "stored_parameter",
]


class RuntimeScale(nn.Module):
    """Parametrization ``w = scale * v``; assigning ``w`` stores ``v = w / scale``."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = check_positive_finite("scale", scale)

    def forward(self, stored: Tensor) -> Tensor:
        return stored * self.scale

    def right_inverse(self, effective: Tensor) -> Tensor:
        return effective / self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}"


def _direct_parameters(module: nn.Module) -> list[tuple[str, Tensor]]:
    return [(name, p) for name, p in module.named_parameters(recurse=False)]


def runtime_scaled(
    model: nn.Module,
    *,
    gain: float = DEFAULT_GAIN,
    lr_mul: float = 1.0,
    scale: float | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Return the runtime-scaled twin of a plain model, with the same effective weights.

    Every parameter that is not already scaled gets the constant c of
    :func:`~eqlr_optim.scales.equalized_scale` and stores ``v = w / c``, so the
    twin computes the same function as ``model``. Call it on a submodule first
    (with ``inplace=True`` on a copy) to give that part other constants, as a
    StyleGAN mapping network with ``lr_mul=0.01`` needs.
    """
    gain = check_positive_finite("gain", gain)
    lr_mul = check_positive_finite("lr_mul", lr_mul)
    if scale is not None:
        scale = check_positive_finite("scale", scale)
    twin = model if inplace else copy.deepcopy(model)
    for module_name, module in list(twin.named_modules()):
        if isinstance(module, parametrize.ParametrizationList):
            continue
        for name, p in _direct_parameters(module):
            full_name = f"{module_name}.{name}" if module_name else name
            c = equalized_scale(p.shape, gain, lr_mul, scale, full_name)
            parametrize.register_parametrization(module, name, RuntimeScale(c))
    return twin


def remove_runtime_scaling(twin: nn.Module, inplace: bool = False) -> nn.Module:
    """Return a plain model whose weights are the twin's effective weights ``c * v``."""
    plain = twin if inplace else copy.deepcopy(twin)
    for module in list(plain.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):  # type: ignore[union-attr,operator]
                parametrize.remove_parametrizations(
                    module, name, leave_parametrized=True
                )
    return plain


def stored_parameter(twin: nn.Module, name: str) -> tuple[nn.Parameter, float]:
    """Return the stored ``v`` and the constant c behind the twin's parameter ``name``.

    ``name`` is the parameter's name in the plain model, such as ``"0.weight"``.
    """
    module_name, _, attr = name.rpartition(".")
    module = twin.get_submodule(module_name)
    if not parametrize.is_parametrized(module, attr):
        raise ValueError(f"{name!r} is not runtime-scaled in this model")
    plist = module.parametrizations[attr]  # type: ignore[index]
    (scaling,) = [p for p in plist if isinstance(p, RuntimeScale)]
    original: nn.Parameter = plist.original  # type: ignore[union-attr]
    return original, scaling.scale


def runtime_parameters(
    plain: nn.Module, twin: nn.Module
) -> Iterator[tuple[str, nn.Parameter, nn.Parameter, float]]:
    """Yield ``(name, w, v, c)`` for each parameter of ``plain`` and of its twin."""
    for name, w in plain.named_parameters():
        v, c = stored_parameter(twin, name)
        yield name, w, v, c


@torch.no_grad()
def effective_weight(twin: nn.Module, name: str) -> Tensor:
    """Return the twin's effective weight ``c * v``, as its forward pass computes it."""
    v, c = stored_parameter(twin, name)
    return v * c
