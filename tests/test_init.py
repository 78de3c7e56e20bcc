"""he_init_: weights from N(0, gain²/fan_in), biases zero, other modules untouched."""

import math

import pytest
import torch
from torch import nn

from eqlr_optim import he_init_


@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0)])
def test_he_init_weight_std(gain: float) -> None:
    layer = nn.Linear(400, 500)
    he_init_(layer, gain=gain, generator=torch.Generator().manual_seed(0))
    expected = gain / math.sqrt(400)
    # 200,000 samples give the standard deviation to within about 0.2%.
    assert layer.weight.std().item() == pytest.approx(expected, rel=0.01)
    assert layer.weight.mean().abs().item() < 0.01 * expected


def test_he_init_conv_fan_in() -> None:
    conv = nn.Conv2d(32, 64, 3, groups=2)
    he_init_(conv, generator=torch.Generator().manual_seed(0))
    fan_in = 16 * 3 * 3
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.02)


def test_he_init_zeroes_biases() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.Conv2d(2, 3, 3))
    he_init_(model)
    assert torch.count_nonzero(model[0].bias) == 0
    assert torch.count_nonzero(model[1].bias) == 0


def test_he_init_leaves_norm_layers() -> None:
    norm = nn.LayerNorm(8)
    with torch.no_grad():
        norm.weight.fill_(3.0)
        norm.bias.fill_(0.5)
    he_init_(nn.Sequential(nn.Linear(8, 8), norm))
    assert torch.equal(norm.weight, torch.full((8,), 3.0))
    assert torch.equal(norm.bias, torch.full((8,), 0.5))


def test_he_init_generator_repeats() -> None:
    first = he_init_(nn.Linear(6, 4), generator=torch.Generator().manual_seed(3))
    second = he_init_(nn.Linear(6, 4), generator=torch.Generator().manual_seed(3))
    assert torch.equal(first.weight, second.weight)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_he_init_zero_fan_in_rejected() -> None:
    with pytest.raises(ValueError, match=r"0\.weight .*fan_in 0"):
        he_init_(nn.Sequential(nn.Linear(0, 3)))


@pytest.mark.parametrize("gain", [0.0, -1.0, float("nan")])
def test_he_init_invalid_gain(gain: float) -> None:
    with pytest.raises(ValueError, match="gain must be positive and finite"):
        he_init_(nn.Linear(4, 4), gain=gain)
