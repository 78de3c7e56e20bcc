"""Random arguments and group layouts: a correct optimizer or a documented error.

Each drawn value carries whether it is valid. A configuration with an invalid
value must raise ValueError or TypeError. A valid one must either step, with
the constant c of each tensor computed here from the shape rule, or raise
RuntimeError for the flag conflicts that torch.optim.Adam rejects.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from eqlr_optim import EqualizedAdam
from eqlr_optim.checks import UnsupportedTensorError

NAN = float("nan")
INF = float("inf")

VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    # key: (valid values, invalid values)
    "lr": ([1e-3, 0.0, 0.1, np.float64(0.01)], [-1e-3, NAN, INF, True, "0.1"]),
    "betas": (
        [(0.9, 0.999), (0.0, 0.5), [0.5, 0.9]],
        [(1.0, 0.9), (0.9, -0.1), (0.9,), (NAN, 0.9), (0, 0.9)],
    ),
    "eps": ([1e-8, 0.0, 1e-3], [-1e-8, NAN, INF]),
    "weight_decay": ([0, 0.1, 0.5], [-0.1, NAN, INF]),
    "gain": ([math.sqrt(2.0), 1.0, 2, np.float32(0.5)], [0.0, -1.0, NAN, INF, True]),
    "lr_mul": ([1.0, 0.01, 4], [0, -0.5, NAN, INF, False, torch.tensor(1.0)]),
    "scale": ([None, 0.25, 1.0, 3.0], [0.0, -1.0, NAN, INF, True, torch.tensor(0.5)]),
}

SHAPES = [(4, 3), (3,), (2, 3, 2, 2), (5,), (3, 0), (1, 1)]
NEAR_MISS_KEYS = ["lr_mult", "LR_MUL", "lr-mul", "scales", "Gain", "learning_rate"]
FOREIGN_KEYS = ["initial_lr", "max_lr", "name", "lr_scale"]


@dataclass
class Draw:
    """A configuration, and what it must do."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


@st.composite
def drawn_value(draw: st.DrawFn, key: str, where: str, draw_into: Draw) -> Any:
    valid, invalid = VALUES[key]
    if draw(st.integers(0, 11)) == 0:
        draw_into.invalid.append(f"{where} {key}")
        return draw(st.sampled_from(invalid))
    return draw(st.sampled_from(valid))


@st.composite
def configurations(draw: st.DrawFn) -> Draw:
    result = Draw()
    for key in draw(st.sets(st.sampled_from(sorted(VALUES)))):
        result.kwargs[key] = draw(drawn_value(key, "argument", result))
    result.kwargs["amsgrad"] = draw(st.booleans())
    result.kwargs["maximize"] = draw(st.booleans())
    result.kwargs["decoupled_weight_decay"] = draw(st.booleans())
    result.kwargs["foreach"] = draw(st.sampled_from([None, False, True]))
    result.kwargs["fused"] = draw(st.sampled_from([None, False, True]))
    result.kwargs["differentiable"] = draw(st.integers(0, 5)) == 0
    if "lr" not in result.kwargs and draw(st.integers(0, 5)) == 0:
        result.kwargs["lr"] = torch.tensor(0.01)

    for g in range(draw(st.integers(1, 3))):
        shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3))
        group: dict[str, Any] = {
            "params": [nn.Parameter(torch.randn(s)) for s in shapes]
        }
        for key in draw(st.sets(st.sampled_from(sorted(VALUES)), max_size=2)):
            group[key] = draw(drawn_value(key, f"group {g}", result))
        if draw(st.integers(0, 9)) == 0:
            group[draw(st.sampled_from(NEAR_MISS_KEYS))] = 1.0
            result.invalid.append(f"group {g} near-miss key")
        if draw(st.booleans()):
            group[draw(st.sampled_from(FOREIGN_KEYS))] = 0.5
        result.groups.append(group)
    return result


def resolved(draw: Draw, group: dict[str, Any], key: str, default: Any) -> Any:
    if key in group:
        return group[key]
    return draw.kwargs.get(key, default)


def expected_constant(
    shape: torch.Size, gain: float, lr_mul: float, scale: Any
) -> float:
    """The constant c, from the shape rule written out independently."""
    if scale is not None:
        return float(scale)
    if len(shape) < 2:
        return float(lr_mul)
    fan_in = 1
    for size in shape[1:]:
        fan_in *= size
    return float(gain) * float(lr_mul) / math.sqrt(fan_in)


def has_unscaled_zero_fan_in(draw: Draw) -> bool:
    for group in draw.groups:
        if resolved(draw, group, "scale", None) is not None:
            continue
        if any(p.dim() >= 2 and p[0].numel() == 0 for p in group["params"]):
            return True
    return False


def reference_run(
    draw: Draw, group: dict[str, Any], start: torch.Tensor, grads: list[torch.Tensor]
) -> torch.Tensor:
    """Step a copy of a parameter with torch.optim.Adam and the transformed values."""
    c = expected_constant(
        start.shape,
        resolved(draw, group, "gain", math.sqrt(2.0)),
        resolved(draw, group, "lr_mul", 1.0),
        resolved(draw, group, "scale", None),
    )
    decoupled = draw.kwargs["decoupled_weight_decay"]
    weight_decay = float(resolved(draw, group, "weight_decay", 0.0))
    flags = {
        key: draw.kwargs[key]
        for key in ("amsgrad", "maximize", "foreach", "fused", "decoupled_weight_decay")
    }
    betas = resolved(draw, group, "betas", (0.9, 0.999))
    copy = nn.Parameter(start.clone())
    optimizer = torch.optim.Adam(
        [copy],
        lr=resolved(draw, group, "lr", 1e-3) * c,
        betas=(float(betas[0]), float(betas[1])),
        eps=float(resolved(draw, group, "eps", 1e-8)) / c,
        weight_decay=weight_decay / (c if decoupled else c * c),
        **flags,
    )
    for grad in grads:
        copy.grad = grad
        optimizer.step()
    return copy.detach()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_fuzz_optimizer_or_documented_error(draw: Draw) -> None:
    kwargs = draw.kwargs
    tensor_lr_foreach = isinstance(kwargs.get("lr"), torch.Tensor) and kwargs["foreach"]
    must_raise_value = (
        draw.invalid or has_unscaled_zero_fan_in(draw) or tensor_lr_foreach
    )
    conflict = kwargs["fused"] and (kwargs["foreach"] or kwargs["differentiable"])

    try:
        optimizer = EqualizedAdam(draw.groups, **kwargs)
    except (ValueError, TypeError):
        assert must_raise_value
        return
    except RuntimeError as error:
        assert conflict, error
        assert not must_raise_value
        return
    assert not must_raise_value, draw.invalid
    assert not conflict

    params = [p for group in draw.groups for p in group["params"]]
    # Two steps, because the first step of Adam is lr * sign(g) whatever eps
    # and L2 decay are, and would not show a wrong eps / c or decay / c**2.
    grads = [[torch.randn_like(p) for p in params] for _ in range(2)]
    before = [p.detach().clone() for p in params]
    try:
        for step_grads in grads:
            for p, grad in zip(params, step_grads, strict=True):
                p.grad = grad
            optimizer.step()
    except UnsupportedTensorError as error:
        assert kwargs["differentiable"], error
        after = [p.detach() for p in params]
        assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
        return
    assert not kwargs["differentiable"]

    groups = [group for group in draw.groups for _ in group["params"]]
    for i, (p, group) in enumerate(zip(params, groups, strict=True)):
        assert p.isfinite().all()
        expected = reference_run(draw, group, before[i], [g[i] for g in grads])
        # Compared as updates, so that a wrong eps or decay is not lost in |w|.
        torch.testing.assert_close(
            p.detach() - before[i], expected - before[i], rtol=1e-5, atol=1e-9
        )
