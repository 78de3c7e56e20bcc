"""float16 and bfloat16: EqualizedAdam rounds as the runtime formulation does.

With ``w = c * v`` both coordinates see the same relative update |Δw|/|w|. When
c is a power of two, every value of one run is the other's times a power of
two, so the two runs round alike and agree bit for bit.
"""

from typing import Any

import pytest
import torch
from torch import nn

from eqlr_optim import EqualizedAdam, runtime_parameters, runtime_scaled
from eqlr_optim.runtime import effective_weight

PATHS = {
    "single_tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}

# gain 1 with fan-ins 16 and 64 gives c = 1/4 and 1/8. Biases get c = lr_mul = 1.
CONSTANTS = {"gain": 1.0, "lr_mul": 1.0}
# Keeps squared gradients and the second moments above float16's smallest
# normal number, 2**-14. In the subnormal range, multiplying by c drops bits,
# and float16 runs differ in a few elements.
LOSS_SCALE = 32.0
# eps is a normal number in float16, at every c, so eps / c rounds exactly.
ADAM = {"lr": 0.01, "eps": 1e-3, "betas": (0.5, 0.75)}


def model_pair(dtype: torch.dtype) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2), nn.Linear(64, 4))
    with torch.no_grad():
        for p in model.parameters():
            # Away from the subnormal range of float16 (below 2**-14), where
            # w = c * v is no longer exact.
            p.copy_(p.sign() * p.abs().clamp(min=2**-8))
    model = model.to(dtype)
    return model, runtime_scaled(model, **CONSTANTS)


def train_pair(
    model: nn.Module,
    twin: nn.Module,
    kwargs: dict[str, Any],
    dtype: torch.dtype,
    autocast: bool,
) -> None:
    optimizer = EqualizedAdam(model.parameters(), **ADAM, **CONSTANTS, **kwargs)
    twin_optimizer = torch.optim.Adam(twin.parameters(), **ADAM, **kwargs)
    torch.manual_seed(1)
    for _ in range(5):
        x = torch.randn(8, 16, dtype=dtype)
        target = 8 * torch.randn(8, 4, dtype=dtype)
        for net, opt in ((model, optimizer), (twin, twin_optimizer)):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = LOSS_SCALE * (net(x) - target).pow(2).mean()
            loss.backward()
            opt.step()


def differing_weights(model: nn.Module, twin: nn.Module) -> list[str]:
    return [
        name
        for name, w, _, _ in runtime_parameters(model, twin)
        if not torch.equal(w, effective_weight(twin, name))
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_bitwise(dtype: torch.dtype, path: str) -> None:
    model, twin = model_pair(dtype)
    start = model[0].weight.detach().clone()
    train_pair(model, twin, PATHS[path], dtype, autocast=False)
    assert differing_weights(model, twin) == []
    assert not torch.equal(model[0].weight, start)


@pytest.mark.parametrize("path", PATHS)
def test_autocast_master_weights_bitwise(path: str) -> None:
    model, twin = model_pair(torch.float32)
    train_pair(model, twin, PATHS[path], torch.float32, autocast=True)
    assert differing_weights(model, twin) == []
    assert model[0].weight.dtype == torch.float32


def one_step(weight: torch.Tensor, optimizer_type: type, **kwargs: Any) -> None:
    weight.grad = torch.ones_like(weight)
    optimizer_type([weight], lr=1e-3, **kwargs).step()


def test_bfloat16_update_below_half_ulp_vanishes() -> None:
    # The first Adam step moves w by lr * c = 2.5e-4, below half an ulp of 1.0
    # in bfloat16 (2**-8), so it rounds away. The runtime formulation moves
    # v = w / c = 4 by lr = 1e-3, below half an ulp of 4 (2**-6), so it is lost as well.
    w = nn.Parameter(torch.ones(3, 16, dtype=torch.bfloat16))
    one_step(w, EqualizedAdam, gain=1.0)
    assert torch.equal(w, torch.ones_like(w))

    v = nn.Parameter(torch.full((3, 16), 4.0, dtype=torch.bfloat16))
    one_step(v, torch.optim.Adam)
    assert torch.equal(v, torch.full_like(v, 4.0))


def test_float32_master_weight_keeps_small_update() -> None:
    w = nn.Parameter(torch.ones(3, 16))
    one_step(w, EqualizedAdam, gain=1.0)
    step = (1.0 - w.detach()).mean().item()
    assert step == pytest.approx(2.5e-4, rel=1e-3)
