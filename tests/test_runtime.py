"""The runtime-scaled twin: same function, v = w / c, and conversion both ways."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from eqlr_optim import remove_runtime_scaling, runtime_parameters, runtime_scaled
from eqlr_optim.runtime import effective_weight, stored_parameter


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 2),
    ).double()


def inputs() -> torch.Tensor:
    return torch.randn(2, 3, 5, 5, dtype=torch.float64)


def test_runtime_scaled_same_function() -> None:
    model = network()
    twin = runtime_scaled(model)
    x = inputs()
    torch.testing.assert_close(twin(x), model(x), rtol=1e-14, atol=0.0)


def test_runtime_scaled_stores_v_over_c() -> None:
    model = network()
    twin = runtime_scaled(model, gain=1.0, lr_mul=0.5)
    expected = {
        "0.weight": 0.5 / math.sqrt(3 * 3 * 3),
        "0.bias": 0.5,
        "3.weight": 0.5 / math.sqrt(100),
        "3.bias": 0.5,
    }
    for name, w, v, c in runtime_parameters(model, twin):
        assert c == pytest.approx(expected[name], rel=1e-15), name
        torch.testing.assert_close(v * c, w, rtol=1e-15, atol=0.0)


def test_runtime_scaled_leaves_model_plain() -> None:
    model = network()
    runtime_scaled(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_runtime_scaled_explicit_scale() -> None:
    model = network()
    twin = runtime_scaled(model, scale=0.25)
    scales = {c for _, _, _, c in runtime_parameters(model, twin)}
    assert scales == {0.25}


def test_runtime_scaled_submodule_first() -> None:
    model = network()
    twin = copy.deepcopy(model)
    runtime_scaled(twin[3], lr_mul=0.01, inplace=True)
    runtime_scaled(twin, inplace=True)
    _, head_bias = stored_parameter(twin, "3.bias")
    _, conv_bias = stored_parameter(twin, "0.bias")
    assert head_bias == 0.01
    assert conv_bias == 1.0
    x = inputs()
    torch.testing.assert_close(twin(x), model(x), rtol=1e-13, atol=0.0)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_runtime_scaled_zero_fan_in_names_tensor() -> None:
    model = nn.Sequential(nn.Linear(0, 3))
    with pytest.raises(ValueError, match=r"0\.weight"):
        runtime_scaled(model)


@pytest.mark.parametrize("norm", [spectral_norm, weight_norm])
def test_runtime_scaled_rejects_other_parametrization(norm) -> None:
    # eval() stops spectral_norm's power iteration from changing the output.
    model = nn.Sequential(norm(nn.Linear(4, 3)), nn.Linear(3, 2)).eval()
    x = torch.randn(2, 4)
    with torch.no_grad():
        before = model(x)

    with pytest.raises(ValueError, match=r"0\.weight has the parametrization"):
        runtime_scaled(model)

    with torch.no_grad():
        assert torch.equal(model(x), before)
    assert "bias" in dict(model[0].named_parameters())


def test_remove_runtime_scaling_round_trip() -> None:
    model = network()
    twin = runtime_scaled(model)
    plain = remove_runtime_scaling(twin)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    for (name, w), (_, w_back) in zip(
        model.named_parameters(), plain.named_parameters(), strict=True
    ):
        torch.testing.assert_close(w_back, w, rtol=1e-15, atol=0.0, msg=name)


def test_remove_runtime_scaling_keeps_twin() -> None:
    model = network()
    twin = runtime_scaled(model)
    x = inputs()
    with torch.no_grad():
        before = twin(x)

    remove_runtime_scaling(twin)

    assert all(parametrize.is_parametrized(twin[i], "weight") for i in (0, 3)), (
        "the twin lost its parametrization"
    )
    with torch.no_grad():
        assert torch.equal(twin(x), before)


def test_remove_runtime_scaling_inplace() -> None:
    twin = runtime_scaled(network())
    plain = remove_runtime_scaling(twin, inplace=True)
    assert plain is twin
    assert type(plain[0]) is nn.Conv2d


def test_effective_weight_is_c_times_v() -> None:
    model = network()
    twin = runtime_scaled(model)
    v, c = stored_parameter(twin, "3.weight")
    assert torch.equal(effective_weight(twin, "3.weight"), v.detach() * c)


def test_stored_parameter_unscaled_name() -> None:
    with pytest.raises(ValueError, match="not runtime-scaled"):
        stored_parameter(network(), "0.weight")
