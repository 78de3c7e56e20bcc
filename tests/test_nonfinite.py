"""Non-finite gradients: propagated as torch.optim.Adam does, skipped by GradScaler."""

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from eqlr_optim import EqualizedAdam

PATHS = {
    "single_tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}


def parameters_with_bad_grads() -> list[nn.Parameter]:
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(4))]
    for p in params:
        p.grad = torch.randn_like(p)
    params[0].grad[0, 0] = float("nan")
    params[0].grad[1, 2] = float("inf")
    params[1].grad[3] = -float("inf")
    return params


def bits(t: Tensor) -> Tensor:
    # NaN != NaN, so compare the bit patterns.
    return t.detach().view(torch.int32)


@pytest.mark.parametrize("path", PATHS)
def test_nan_grad_matches_torch_adam(path: str) -> None:
    ours = parameters_with_bad_grads()
    theirs = parameters_with_bad_grads()
    kwargs: dict[str, Any] = {"lr": 0.01, **PATHS[path]}
    EqualizedAdam(ours, scale=1.0, **kwargs).step()
    torch.optim.Adam(theirs, **kwargs).step()
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(bits(p), bits(q))


@pytest.mark.parametrize("path", PATHS)
def test_nan_grad_propagates_with_scale(path: str) -> None:
    ours = parameters_with_bad_grads()
    theirs = parameters_with_bad_grads()
    EqualizedAdam(ours, lr=0.01, gain=1.0, **PATHS[path]).step()
    torch.optim.Adam(theirs, lr=0.01, **PATHS[path]).step()
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(p.isfinite(), q.isfinite())
    assert not ours[0].isfinite().all()


def network() -> nn.Sequential:
    torch.manual_seed(0)
    # Two fan-ins and the biases give three constants, so three kernel calls.
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def scaled_backward(model: nn.Module, scaler: torch.amp.GradScaler) -> None:
    model.zero_grad()
    scaler.scale(model(torch.randn(5, 4)).pow(2).sum()).backward()


@pytest.mark.parametrize("path", PATHS)
def test_grad_scaler_skips_inf_step(path: str) -> None:
    model = network()
    optimizer = EqualizedAdam(model.parameters(), lr=0.01, **PATHS[path])
    scaler = torch.amp.GradScaler("cpu")
    scaled_backward(model, scaler)
    scaler.step(optimizer)
    scaler.update()
    params = [p.detach().clone() for p in model.parameters()]
    states = [
        {key: value.clone() for key, value in optimizer.state[p].items()}
        for p in model.parameters()
    ]

    scaled_backward(model, scaler)
    model[2].weight.grad[0, 0] = float("inf")
    scaler.step(optimizer)
    scaler.update()

    for p, old in zip(model.parameters(), params, strict=True):
        assert torch.equal(p, old)
    for p, old_state in zip(model.parameters(), states, strict=True):
        for key, value in old_state.items():
            assert torch.equal(optimizer.state[p][key], value), key
    assert optimizer.state[model[0].weight]["step"].item() == 1.0
    assert scaler.get_scale() == 2.0**15


@pytest.mark.parametrize("path", PATHS)
def test_grad_scaler_finite_step_taken(path: str) -> None:
    model = network()
    optimizer = EqualizedAdam(model.parameters(), lr=0.01, **PATHS[path])
    scaler = torch.amp.GradScaler("cpu")
    before = model[0].weight.detach().clone()
    scaled_backward(model, scaler)
    scaler.step(optimizer)
    assert not torch.equal(model[0].weight, before)
    assert optimizer.state[model[0].weight]["step"].item() == 1.0
