"""EqualizedAdam on plain layers against torch.optim.Adam on the runtime-scaled twin.

Each example builds a random MLP or convolutional network, its twin that stores
``v = w / c``, random constants, hyperparameters and data, and trains both for a
few steps. The plain model must follow the twin's effective weights ``c·v``:
to a relative 1e-10 in float64, and bit for bit when every constant is a power of
two. The negative controls run the same checks on optimizers that scale the step
but not eps, or nothing at all, and the checks must reject them.
"""

import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn
from twins import (
    AdamSettings,
    Case,
    Constants,
    bitwise_mismatches,
    convnet,
    equalized,
    max_relative_deviation,
    mlp,
    plain_adam,
    scaled_step_only,
    settings_strategy,
    train_pair,
)

import eqlr_optim

RTOL = 1e-10
STEPS = 4

fuzz = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def models(
    draw: st.DrawFn, power_of_two: bool, dtype: torch.dtype
) -> tuple[nn.Module, tuple[int, ...]]:
    """A random network and the shape of one input sample."""
    seed = draw(st.integers(0, 2**16))
    widths = st.sampled_from([1, 4, 16]) if power_of_two else st.integers(1, 12)
    if draw(st.booleans()):
        layer_widths = draw(st.lists(widths, min_size=2, max_size=4))
        return mlp(layer_widths, dtype, seed), (layer_widths[0],)
    # Powers of two keep every fan_in c_in·k² and c·size² a power of four.
    channels = st.sampled_from([1, 4]) if power_of_two else st.integers(1, 5)
    kernel = st.sampled_from([1, 2]) if power_of_two else st.integers(1, 3)
    size = draw(st.sampled_from([2, 4]) if power_of_two else st.integers(2, 5))
    layer_channels = draw(st.lists(channels, min_size=2, max_size=3))
    model = convnet(layer_channels, draw(kernel), size, dtype, seed)
    return model, (layer_channels[0], size, size)


constants_real = st.builds(
    Constants,
    gain=st.sampled_from([1.0, math.sqrt(2.0)]) | st.floats(0.1, 4.0),
    lr_mul=st.sampled_from([1.0, 0.01]) | st.floats(1e-3, 10.0),
    scale=st.none() | st.floats(1e-2, 10.0),
)

constants_power_of_two = st.builds(
    Constants,
    gain=st.sampled_from([0.5, 1.0, 2.0]),
    lr_mul=st.sampled_from([1.0, 0.25, 2.0**-7]),
    scale=st.none() | st.integers(-8, 3).map(lambda k: 2.0**k),
)


@st.composite
def cases(
    draw: st.DrawFn,
    power_of_two: bool = False,
    dtype: torch.dtype = torch.float64,
    adam: st.SearchStrategy[AdamSettings] = settings_strategy,
) -> Case:
    model, sample_shape = draw(models(power_of_two, dtype))
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    batch = draw(st.integers(1, 8))
    inputs = torch.randn(batch, *sample_shape, generator=generator, dtype=dtype)
    targets = torch.randn(batch, head.out_features, generator=generator, dtype=dtype)
    return Case(
        model=model,
        inputs=inputs,
        targets=targets,
        # Tiny losses give tiny gradients, against which eps matters.
        loss_scale=draw(st.sampled_from([1.0, 1e-4, 1e-8])),
        settings=draw(adam),
        constants=draw(constants_power_of_two if power_of_two else constants_real),
    )


@fuzz
@given(case=cases())
def test_adam_matches_twin_float64(case: Case) -> None:
    deviations: list[float] = []
    train_pair(
        case,
        STEPS,
        equalized(case),
        lambda step: deviations.append(max_relative_deviation(case)),
    )
    assert max(deviations) <= RTOL, deviations


@fuzz
@given(
    case=cases(power_of_two=True, dtype=torch.float64)
    | cases(power_of_two=True, dtype=torch.float32)
)
def test_adam_bitwise_power_of_two(case: Case) -> None:
    mismatches: list[tuple[int, list[str]]] = []

    def check(step: int) -> None:
        names = bitwise_mismatches(case)
        if names:
            mismatches.append((step, names))

    train_pair(case, STEPS, equalized(case), check)
    assert mismatches == []


def has_nontrivial_constant(case: Case) -> bool:
    return any(
        abs(c - 1.0) > 1e-3
        for _, _, _, c in eqlr_optim.runtime_parameters(case.model, case.twin)
    )


# Gradients of the size of eps, so that a wrong eps changes every update by a
# fraction of itself.
eps_sized = st.builds(
    AdamSettings,
    lr=st.floats(1e-3, 1e-2),
    betas=st.tuples(st.sampled_from([0.0, 0.9]), st.sampled_from([0.99, 0.999])),
    eps=st.sampled_from([1e-3, 1e-2]),
    amsgrad=st.booleans(),
)


@pytest.mark.parametrize(
    "wrong_optimizer", [scaled_step_only, plain_adam], ids=["eps_unscaled", "plain"]
)
@settings(deadline=None)
@given(data=st.data())
def test_negative_control_is_caught(wrong_optimizer, data: st.DataObject) -> None:
    case = data.draw(cases(adam=eps_sized))
    assume(has_nontrivial_constant(case))
    case.loss_scale = 1e-3
    correct = copy.deepcopy(case)

    wrong_deviations: list[float] = []
    train_pair(
        case,
        STEPS,
        wrong_optimizer(case),
        lambda step: wrong_deviations.append(max_relative_deviation(case)),
    )
    correct_deviations: list[float] = []
    train_pair(
        correct,
        STEPS,
        equalized(correct),
        lambda step: correct_deviations.append(max_relative_deviation(correct)),
    )

    assert max(correct_deviations) <= RTOL
    assert max(wrong_deviations) > 1e3 * RTOL, wrong_deviations


def train_side_by_side(
    *pairs: tuple[nn.Module, torch.optim.Optimizer],
    inputs: torch.Tensor,
    steps: int,
) -> None:
    for _ in range(steps):
        for net, opt in pairs:
            opt.zero_grad()
            net(inputs).square().mean().backward()
            opt.step()


def stylegan_like(dtype: torch.dtype) -> tuple[nn.Module, nn.Module]:
    """A mapping network at lr_mul 0.01 in front of a head at the default constants."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Linear(16, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16)),
        nn.LeakyReLU(0.2),
        nn.Linear(16, 4),
    ).to(dtype)
    eqlr_optim.he_init_(model)
    twin = copy.deepcopy(model)
    eqlr_optim.runtime_scaled(twin[0], lr_mul=0.01, inplace=True)
    eqlr_optim.runtime_scaled(twin, inplace=True)
    return model, twin


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_groups_with_own_lr_mul(dtype: torch.dtype) -> None:
    model, twin = stylegan_like(dtype)
    settings_ = AdamSettings(lr=2e-3, betas=(0.0, 0.99), eps=1e-8)
    plain_opt = eqlr_optim.EqualizedAdam(
        [
            {"params": model[0].parameters(), "lr_mul": 0.01},
            {"params": model[2].parameters()},
        ],
        **settings_.kwargs(),
    )
    twin_opt = torch.optim.Adam(twin.parameters(), **settings_.kwargs())
    inputs = torch.randn(8, 16, dtype=dtype)

    train_side_by_side((model, plain_opt), (twin, twin_opt), inputs=inputs, steps=10)

    for name, w, v, c in eqlr_optim.runtime_parameters(model, twin):
        reference = (v * c).detach()
        gap = ((w - reference).abs().max() / reference.abs().max()).item()
        assert gap <= (RTOL if dtype == torch.float64 else 1e-5), name


def test_adam_group_lr_is_user_value() -> None:
    model = mlp([8, 8, 2], torch.float64, seed=0)
    opt = eqlr_optim.EqualizedAdam(model.parameters(), lr=1e-3, lr_mul=0.01)
    model(torch.randn(4, 8, dtype=torch.float64)).sum().backward()
    opt.step()
    assert opt.param_groups[0]["lr"] == 1e-3


def test_adam_stylegan_bitwise_power_of_two() -> None:
    """gain 1 and fan_in 16 give c = 1/4, and lr_mul 2**-7 keeps it a power of two."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16))
    eqlr_optim.he_init_(model, gain=1.0)
    twin = eqlr_optim.runtime_scaled(model, gain=1.0, lr_mul=2.0**-7)
    plain_opt = eqlr_optim.EqualizedAdam(
        model.parameters(), lr=1e-2, betas=(0.0, 0.99), gain=1.0, lr_mul=2.0**-7
    )
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-2, betas=(0.0, 0.99))
    inputs = torch.randn(8, 16)

    train_side_by_side((model, plain_opt), (twin, twin_opt), inputs=inputs, steps=10)

    for name, w, v, c in eqlr_optim.runtime_parameters(model, twin):
        assert torch.equal(w.detach(), (v * c).detach()), name
