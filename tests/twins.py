"""Random networks and their runtime-scaled twins, trained side by side."""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st
from torch import nn

import eqlr_optim
from eqlr_optim.runtime import runtime_parameters


@dataclass(frozen=True)
class AdamSettings:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    maximize: bool = False
    decoupled_weight_decay: bool = False

    def kwargs(self) -> dict[str, object]:
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "amsgrad": self.amsgrad,
            "maximize": self.maximize,
            "decoupled_weight_decay": self.decoupled_weight_decay,
        }


@dataclass(frozen=True)
class Constants:
    gain: float = eqlr_optim.scales.DEFAULT_GAIN
    lr_mul: float = 1.0
    scale: float | None = None

    def kwargs(self) -> dict[str, object]:
        return {"gain": self.gain, "lr_mul": self.lr_mul, "scale": self.scale}


@dataclass
class Case:
    """A plain model, its twin, the data and the loss, ready to train."""

    model: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor
    loss_scale: float
    settings: AdamSettings
    constants: Constants
    twin: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.twin = eqlr_optim.runtime_scaled(self.model, **self.constants.kwargs())

    def loss(self, model: nn.Module) -> torch.Tensor:
        out = model(self.inputs)
        return self.loss_scale * (out - self.targets).pow(2).mean()


def mlp(widths: list[int], dtype: torch.dtype, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(0.2)]
    model = nn.Sequential(*layers[:-1]).to(dtype)
    eqlr_optim.he_init_(model)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.bias.normal_(0.0, 0.1)
    return model


def convnet(
    channels: list[int], kernel: int, size: int, dtype: torch.dtype, seed: int
) -> nn.Module:
    """Convolutions that keep a ``size``×``size`` image, then a linear head."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
        layers += [
            nn.Conv2d(c_in, c_out, kernel, padding="same"),
            nn.LeakyReLU(0.2),
        ]
    layers += [nn.Flatten(), nn.Linear(channels[-1] * size * size, 2)]
    model = nn.Sequential(*layers).to(dtype)
    eqlr_optim.he_init_(model)
    return model


def train_pair(
    case: Case,
    steps: int,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    after_step: Callable[[int], None],
) -> None:
    """Train the plain model with ``make_optimizer`` and the twin with torch Adam."""
    plain_opt = make_optimizer(case.model)
    twin_opt = torch.optim.Adam(case.twin.parameters(), **case.settings.kwargs())
    for step in range(steps):
        for model, opt in ((case.model, plain_opt), (case.twin, twin_opt)):
            opt.zero_grad()
            case.loss(model).backward()
            opt.step()
        after_step(step)


def equalized(case: Case) -> Callable[[nn.Module], torch.optim.Optimizer]:
    def make(model: nn.Module) -> torch.optim.Optimizer:
        return eqlr_optim.EqualizedAdam(
            model.parameters(), **case.settings.kwargs(), **case.constants.kwargs()
        )

    return make


def scaled_step_only(case: Case) -> Callable[[nn.Module], torch.optim.Optimizer]:
    """The common mistake: lr·c for each tensor, but eps and decay left alone."""

    def make(model: nn.Module) -> torch.optim.Optimizer:
        groups = [
            {"params": [w], "lr": case.settings.lr * c}
            for _, w, _, c in runtime_parameters(case.model, case.twin)
        ]
        return torch.optim.Adam(groups, **case.settings.kwargs())

    return make


def plain_adam(case: Case) -> Callable[[nn.Module], torch.optim.Optimizer]:
    def make(model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), **case.settings.kwargs())

    return make


def max_relative_deviation(case: Case) -> float:
    """Largest ``max|w - c·v| / max|c·v|`` over the parameters of the pair."""
    worst = 0.0
    with torch.no_grad():
        for _, w, v, c in runtime_parameters(case.model, case.twin):
            reference = v * c
            size = reference.abs().max().item()
            gap = (w - reference).abs().max().item()
            worst = max(worst, gap / size if size > 0 else gap)
    return worst


def bitwise_mismatches(case: Case) -> list[str]:
    """Return the parameters whose ``w`` differs from the twin's ``c·v`` in any bit."""
    with torch.no_grad():
        return [
            name
            for name, w, v, c in runtime_parameters(case.model, case.twin)
            if not torch.equal(w, v * c)
        ]


settings_strategy = st.builds(
    AdamSettings,
    lr=st.sampled_from([1e-4, 1e-3, 1e-2]) | st.floats(1e-5, 5e-2),
    betas=st.tuples(
        st.sampled_from([0.0, 0.5, 0.9]) | st.floats(0.0, 0.99),
        st.sampled_from([0.99, 0.999]) | st.floats(0.5, 0.9999),
    ),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3, 1e-1]),
    weight_decay=st.sampled_from([0.0, 0.0, 1e-2, 0.5]),
    amsgrad=st.booleans(),
    maximize=st.booleans(),
    decoupled_weight_decay=st.booleans(),
)
