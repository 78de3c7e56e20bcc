"""EqualizedAdam against torch.optim.Adam on every implementation path.

Each case of ``PATHS`` x ``OPTIONS`` x ``MODELS`` trains for a few steps and
compares parameters and optimizer state. With every constant 1 it must match
torch.optim.Adam bitwise, and with every constant a power of two the
runtime-scaled twin bitwise. Otherwise it must match the twin to a relative 1e-10
in float64 (1e-7 on the capturable paths, see ``helpers.TENSOR_STEP_RTOL``). Where
torch.optim.Adam raises, EqualizedAdam must raise the same exception type.

torch 2.13 runs ``capturable=True`` only on CUDA, XPU, HPU and XLA devices. Its
arithmetic does not depend on the device, so the capturable cases run on the CPU
with the device check of ``torch.optim.adam`` widened to include it.
"""

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from helpers import (
    GENERIC,
    GENERIC_RTOL,
    POWER_OF_TWO,
    TENSOR_STEP_RTOL,
    UNIT,
    Constants,
    Pair,
    allow_cpu_capturable,
    differences,
    make_batches,
    make_model,
    make_pair,
    matched_tensors,
    train,
    train_pair,
)
from torch import nn

from eqlr_optim import EqualizedAdam, equalized_scale

STEPS = 4

CONTROL_PATHS = [
    "single_tensor",
    "foreach",
    "fused",
    "capturable",
    "capturable_foreach",
]


LrFactory = Callable[[torch.dtype], dict[str, Any]]


def _tensor(value: float, dtype: torch.dtype) -> torch.Tensor:
    # A float64 run keeps its tensor hyperparameters in float64, so that lr * c
    # rounds no more than the float lr does.
    return torch.tensor(value, dtype=torch.float64 if dtype == torch.float64 else None)


PATHS: dict[str, LrFactory] = {
    "single_tensor": lambda dtype: {"foreach": False},
    "foreach": lambda dtype: {"foreach": True},
    "fused": lambda dtype: {"fused": True},
    "capturable": lambda dtype: {"capturable": True, "foreach": False},
    "capturable_foreach": lambda dtype: {"capturable": True, "foreach": True},
    "tensor_lr": lambda dtype: {"lr": _tensor(0.01, dtype), "foreach": False},
    "tensor_lr_fused": lambda dtype: {"lr": _tensor(0.01, dtype), "fused": True},
    "tensor_lr_foreach": lambda dtype: {"lr": _tensor(0.01, dtype), "foreach": True},
    "tensor_betas": lambda dtype: {
        "betas": (_tensor(0.9, dtype), _tensor(0.99, dtype)),
        "foreach": False,
    },
    "tensor_lr_betas_capturable_foreach": lambda dtype: {
        "lr": _tensor(0.01, dtype),
        "betas": (_tensor(0.9, dtype), _tensor(0.99, dtype)),
        "capturable": True,
        "foreach": True,
    },
}
"""Implementation paths of torch.optim.Adam, as keyword arguments."""

OPTIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "amsgrad": {"amsgrad": True},
    "maximize": {"maximize": True},
    "l2_decay": {"weight_decay": 0.1},
    "decoupled_decay": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "all": {
        "amsgrad": True,
        "maximize": True,
        "weight_decay": 0.1,
        "decoupled_weight_decay": True,
    },
}
"""Options that change the arithmetic of a step."""

MODELS = {"real": False, "complex": True}

CASES = [
    pytest.param(path, option, model, id=f"{path}-{option}-{model}")
    for path in PATHS
    for option in OPTIONS
    for model in MODELS
]


@pytest.fixture
def cpu_capturable(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_cpu_capturable(monkeypatch)


def _adam_kwargs(path: str, option: str, dtype: torch.dtype) -> dict[str, Any]:
    return {"lr": 0.01, **PATHS[path](dtype), **OPTIONS[option]}


def _torch_error(
    kwargs: dict[str, Any], factory: Callable[[], nn.Module], batches: list[Any]
) -> Exception | None:
    """Return what torch.optim.Adam raises on this case, or None."""
    model = factory()
    try:
        train(model, torch.optim.Adam(model.parameters(), **kwargs), batches)
    except (RuntimeError, ValueError, AssertionError) as error:
        return error
    return None


def _run(
    constants: Constants, path: str, option: str, model: str, dtype: torch.dtype
) -> list[str]:
    """Train both sides, or check that both raise the same exception type."""
    kwargs = _adam_kwargs(path, option, dtype)
    batches = make_batches(STEPS, dtype=dtype)

    def factory() -> nn.Module:
        return make_model(dtype=dtype, complex_params=MODELS[model])

    error = _torch_error(kwargs, factory, batches)
    if error is not None:
        with pytest.raises(type(error)):
            train_pair(make_pair(constants, kwargs, factory), batches)
        return []

    pair = make_pair(constants, kwargs, factory)
    train_pair(pair, batches)
    if constants != GENERIC:
        return differences(pair)
    capturable = kwargs.get("capturable", False)
    return differences(pair, rtol=TENSOR_STEP_RTOL if capturable else GENERIC_RTOL)


@pytest.mark.usefixtures("cpu_capturable")
@pytest.mark.parametrize(("path", "option", "model"), CASES)
def test_unit_constants_bitwise(path: str, option: str, model: str) -> None:
    assert _run(UNIT, path, option, model, torch.float32) == []


@pytest.mark.usefixtures("cpu_capturable")
@pytest.mark.parametrize(("path", "option", "model"), CASES)
def test_power_of_two_bitwise(path: str, option: str, model: str) -> None:
    assert _run(POWER_OF_TWO, path, option, model, torch.float32) == []


@pytest.mark.usefixtures("cpu_capturable")
@pytest.mark.parametrize(("path", "option", "model"), CASES)
def test_generic_constants_float64(path: str, option: str, model: str) -> None:
    assert _run(GENERIC, path, option, model, torch.float64) == []


CONTROL_EPS = 1e-2
"""Large enough next to sqrt(exp_avg_sq) that eps / c and eps give other steps."""


def _control_pair(path: str, divide_eps: bool) -> Pair:
    """Pair the twin with torch.optim.Adam on the plain model, c applied by hand.

    Each tensor gets its own group with ``lr * c`` and ``eps / c``, or ``eps``
    itself when ``divide_eps`` is False.
    """
    kwargs = {**_adam_kwargs(path, "defaults", torch.float32), "eps": CONTROL_EPS}
    pair = make_pair(POWER_OF_TWO, kwargs)
    groups = [
        {
            "params": [w],
            "lr": kwargs["lr"] * c,
            "eps": CONTROL_EPS / c if divide_eps else CONTROL_EPS,
        }
        for _, w, _, c in matched_tensors(pair)
    ]
    pair.optimizer = torch.optim.Adam(groups, **kwargs)
    return pair


@pytest.mark.usefixtures("cpu_capturable")
@pytest.mark.parametrize("path", CONTROL_PATHS)
def test_control_eps_divided_bitwise(path: str) -> None:
    pair = _control_pair(path, divide_eps=True)
    train_pair(pair, make_batches(STEPS))
    assert differences(pair) == []


@pytest.mark.usefixtures("cpu_capturable")
@pytest.mark.parametrize("path", CONTROL_PATHS)
def test_control_eps_undivided_differs(path: str) -> None:
    pair = _control_pair(path, divide_eps=False)
    train_pair(pair, make_batches(STEPS))
    assert differences(pair) != []


def test_fused_mixed_dtypes_bitwise() -> None:
    """The fused path groups by dtype, and each tensor keeps its own constant."""
    torch.manual_seed(0)
    shapes_and_dtypes = [
        ((3, 4), torch.float32),
        ((5, 16), torch.float64),
        ((3,), torch.float32),
        ((2, 9), torch.float64),
    ]
    ours = [torch.nn.Parameter(torch.randn(s, dtype=d)) for s, d in shapes_and_dtypes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    optimizer = EqualizedAdam(ours, lr=0.01, eps=1e-3, fused=True)
    groups = []
    for p in theirs:
        c = equalized_scale(p.shape, math.sqrt(2.0), 1.0)
        groups.append({"params": [p], "lr": 0.01 * c, "eps": 1e-3 / c})
    reference = torch.optim.Adam(groups, fused=True)

    for _ in range(3):
        for a, b in zip(ours, theirs, strict=True):
            grad = torch.randn_like(a)
            a.grad = grad
            b.grad = grad.clone()
        optimizer.step()
        reference.step()

    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a.detach(), b.detach()), tuple(a.shape)
