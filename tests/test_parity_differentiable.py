"""EqualizedAdam with differentiable=True: trajectory and hypergradients.

With ``differentiable=True`` torch.optim.Adam updates non-leaf parameters inside
autograd, so the final parameters can be differentiated with respect to the
initial ones. Both sides start from leaves, train non-leaf copies for a few
steps, and differentiate ``sum(w_T ** 2)`` with respect to the start. For the
twin, ``w0 = c * v0`` gives ``d/dv0 = c * d/dw0``.
"""

from typing import Any

import pytest
import torch
from helpers import (
    GENERIC,
    POWER_OF_TWO,
    TENSOR_STEP_RTOL,
    UNIT,
    Constants,
    make_batches,
    make_model,
)
from torch import Tensor
from torch.func import functional_call

from eqlr_optim import EqualizedAdam
from eqlr_optim.scales import equalized_scale

STEPS = 3

OPTIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "l2": {"weight_decay": 0.1},
    "amsgrad": {"amsgrad": True},
    "maximize_decoupled": {
        "maximize": True,
        "weight_decay": 0.1,
        "decoupled_weight_decay": True,
    },
    "tensor_betas": {"betas": (torch.tensor(0.9), torch.tensor(0.99))},
}


def run_differentiable(
    kwargs: dict[str, Any], constants: Constants, reference: bool
) -> tuple[list[Tensor], list[Tensor]]:
    """Return the final ``w`` and ``d sum(w_T**2) / dw0`` of one side.

    ``reference`` trains torch.optim.Adam on ``v = w / c`` (c = 1 for ``UNIT``)
    and maps its results back to ``w``; otherwise EqualizedAdam trains ``w``.
    """
    model = make_model(dtype=torch.float64)
    names = [name for name, _ in model.named_parameters()]
    starts = [p.detach() for _, p in model.named_parameters()]
    scales = [
        equalized_scale(w.shape, constants.gain, constants.lr_mul, constants.scale)
        for w in starts
    ]
    if not reference:
        scales = [1.0] * len(starts)
    leaves = [(w / c).requires_grad_() for w, c in zip(starts, scales, strict=True)]
    stored = [leaf.clone() for leaf in leaves]
    if reference:
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            stored, differentiable=True, **kwargs
        )
    else:
        optimizer = EqualizedAdam(
            stored, differentiable=True, **kwargs, **constants.kwargs()
        )

    for x, y in make_batches(STEPS, dtype=torch.float64):
        weights = {
            name: v * c for name, v, c in zip(names, stored, scales, strict=True)
        }
        loss = ((functional_call(model, weights, (x,)) - y) ** 2).mean()
        grads = torch.autograd.grad(loss, stored, create_graph=True)
        for v, g in zip(stored, grads, strict=True):
            v.grad = g
        optimizer.step()

    final = [v * c for v, c in zip(stored, scales, strict=True)]
    objective = sum((w**2).sum() for w in final)
    hypergrads = torch.autograd.grad(objective, leaves)
    return (
        [w.detach() for w in final],
        [g / c for g, c in zip(hypergrads, scales, strict=True)],
    )


def differentiable_mismatches(
    constants: Constants, kwargs: dict[str, Any], rtol: float = 0.0
) -> list[int]:
    """Return the indices of weights (i) and hypergradients (100 + i) that differ.

    torch 2.13 cannot differentiate through amsgrad, because its step changes
    max_exp_avg_sq in place; where torch.optim.Adam raises, ours must raise the
    same exception type.
    """
    try:
        theirs = run_differentiable(kwargs, constants, reference=True)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            run_differentiable(kwargs, constants, reference=False)
        return []
    ours = run_differentiable(kwargs, constants, reference=False)
    found = []
    for kind, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
        for i, (a, b) in enumerate(zip(mine, other, strict=True)):
            if rtol == 0.0:
                same = torch.equal(a, b)
            else:
                same = bool((a - b).abs().max() <= rtol * b.abs().max())
            if not same:
                found.append(kind * 100 + i)
    return found


@pytest.mark.parametrize("option", OPTIONS)
def test_differentiable_unit_bitwise(option: str) -> None:
    assert differentiable_mismatches(UNIT, OPTIONS[option]) == []


@pytest.mark.parametrize("option", OPTIONS)
def test_differentiable_power_of_two_bitwise(option: str) -> None:
    assert differentiable_mismatches(POWER_OF_TWO, OPTIONS[option]) == []


@pytest.mark.parametrize("option", OPTIONS)
def test_differentiable_generic_float64(option: str) -> None:
    assert (
        differentiable_mismatches(GENERIC, OPTIONS[option], rtol=TENSOR_STEP_RTOL) == []
    )


def test_differentiable_control_eps() -> None:
    """eps that matters, given undivided to the twin, must break the match."""
    ours = run_differentiable({"eps": 1e-2}, POWER_OF_TWO, reference=False)
    theirs = run_differentiable({"eps": 1e-2 * 0.125}, POWER_OF_TWO, reference=True)
    assert not torch.equal(ours[0][0], theirs[0][0])
