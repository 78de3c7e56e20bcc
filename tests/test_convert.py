"""A twin's Adam state converted to w-coordinates resumes on the twin's trajectory."""

import copy

import pytest
import torch
from torch import nn

from eqlr_optim import (
    EqualizedAdam,
    load_runtime_adam_state,
    remove_runtime_scaling,
    runtime_parameters,
    runtime_scaled,
)

SETTINGS = {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3, "amsgrad": True}


def train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(8, 6, generator=generator, dtype=torch.float64)
        optimizer.zero_grad()
        # A small loss keeps gradients near eps, where a wrong moment matters.
        (1e-3 * model(x).square().mean()).backward()
        optimizer.step()


def trained_twin() -> tuple[nn.Module, torch.optim.Adam]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.LeakyReLU(0.2), nn.Linear(5, 3)).double()
    twin = runtime_scaled(model, lr_mul=0.3)
    twin_optimizer = torch.optim.Adam(twin.parameters(), **SETTINGS)
    train(twin, twin_optimizer, steps=3)
    return twin, twin_optimizer


def max_gap(plain: nn.Module, twin: nn.Module) -> float:
    gaps = []
    for _, w, v, c in runtime_parameters(plain, twin):
        reference = (v * c).detach()
        gaps.append(((w - reference).abs().max() / reference.abs().max()).item())
    return max(gaps)


def test_converted_state_resumes_trajectory() -> None:
    twin, twin_optimizer = trained_twin()
    plain = remove_runtime_scaling(twin)
    optimizer = EqualizedAdam(plain.parameters(), **SETTINGS, lr_mul=0.3)

    load_runtime_adam_state(optimizer, twin_optimizer, plain, twin)
    train(plain, optimizer, steps=4)
    train(twin, twin_optimizer, steps=4)

    assert max_gap(plain, twin) <= 1e-10


def test_unconverted_state_drifts() -> None:
    """Negative control: the twin's moments copied as they are."""
    twin, twin_optimizer = trained_twin()
    plain = remove_runtime_scaling(twin)
    optimizer = EqualizedAdam(plain.parameters(), **SETTINGS, lr_mul=0.3)

    for _, w, v, _ in runtime_parameters(plain, twin):
        optimizer.state[w] = copy.deepcopy(twin_optimizer.state[v])
    train(plain, optimizer, steps=4)
    train(twin, twin_optimizer, steps=4)

    assert max_gap(plain, twin) > 1e-6


def test_converted_moments_scaled() -> None:
    twin, twin_optimizer = trained_twin()
    plain = remove_runtime_scaling(twin)
    optimizer = EqualizedAdam(plain.parameters(), **SETTINGS, lr_mul=0.3)
    load_runtime_adam_state(optimizer, twin_optimizer, plain, twin)

    for name, w, v, c in runtime_parameters(plain, twin):
        ours, theirs = optimizer.state[w], twin_optimizer.state[v]
        torch.testing.assert_close(ours["exp_avg"] * c, theirs["exp_avg"], msg=name)
        torch.testing.assert_close(
            ours["exp_avg_sq"] * c * c, theirs["exp_avg_sq"], msg=name
        )
        assert torch.equal(ours["step"], theirs["step"]), name
        assert ours["step"] is not theirs["step"], name


def test_mismatched_constant_rejected() -> None:
    twin, twin_optimizer = trained_twin()
    plain = remove_runtime_scaling(twin)
    optimizer = EqualizedAdam(plain.parameters(), **SETTINGS, lr_mul=1.0)

    with pytest.raises(ValueError, match=r"'0\.weight'.*lr_mul"):
        load_runtime_adam_state(optimizer, twin_optimizer, plain, twin)
    assert len(optimizer.state) == 0


def test_parameter_missing_from_optimizer() -> None:
    twin, twin_optimizer = trained_twin()
    plain = remove_runtime_scaling(twin)
    optimizer = EqualizedAdam(plain[0].parameters(), **SETTINGS, lr_mul=0.3)

    with pytest.raises(ValueError, match=r"'2\.weight' .* not in optimizer"):
        load_runtime_adam_state(optimizer, twin_optimizer, plain, twin)
    assert len(optimizer.state) == 0
