"""Models, data and comparisons shared by the parity tests.

Each parity test trains a plain model with :class:`~eqlr_optim.EqualizedAdam` and
a reference with :class:`torch.optim.Adam`: the same plain model when every
constant is 1, or the runtime-scaled twin otherwise. The constants of
``POWER_OF_TWO`` are exact powers of two, so the reference must match bit for
bit. Those of ``GENERIC`` are not, so it must match to ``GENERIC_RTOL``.
"""

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.optim.adam as torch_adam
from torch import Tensor, nn

import eqlr_optim.checks
from eqlr_optim import EqualizedAdam, runtime_scaled
from eqlr_optim.runtime import runtime_parameters

IN_FEATURES = 16
HIDDEN = 16
OUT_FEATURES = 4
BATCH = 8


@dataclass(frozen=True)
class Constants:
    """Keyword arguments shared by EqualizedAdam and runtime_scaled."""

    gain: float = 1.0
    lr_mul: float = 1.0
    scale: float | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"gain": self.gain, "lr_mul": self.lr_mul, "scale": self.scale}


UNIT = Constants(scale=1.0)
"""Every constant is 1: EqualizedAdam must be torch.optim.Adam bit for bit."""

POWER_OF_TWO = Constants(gain=2.0, lr_mul=0.25)
"""Weights of fan_in 16 get c = 2 * 0.25 / 4 = 0.125 and biases c = 0.25."""

GENERIC = Constants(gain=2.0**0.5, lr_mul=0.3)
"""Constants that are not powers of two, for float64 agreement to GENERIC_RTOL."""

GENERIC_RTOL = 1e-10

TENSOR_STEP_RTOL = 1e-7
"""Agreement with constants that are not powers of two, where step is a Tensor.

The capturable and differentiable paths compute the step size
``lr / (1 - beta1**t)`` in the dtype of the step counter, float32, so
``(lr * c) / (1 - beta1**t)`` and ``c * (lr / (1 - beta1**t))`` differ by up to
2**-24 relative in each step. The measured difference after 3 or 4 float64 steps
is below 1e-8 relative.
"""

STATE_POWERS = {"exp_avg": 1, "exp_avg_sq": 2, "max_exp_avg_sq": 2}
"""Power of c between a state tensor of the twin and that of the plain model."""


def allow_cpu_capturable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``capturable=True`` run on the CPU, for torch.optim.Adam and ours alike.

    torch 2.13 runs the capturable path only on CUDA, XPU, HPU and XLA devices.
    Its arithmetic does not depend on the device, so the tests widen the device
    check to cover the CPU.
    """
    # Each module looks the device list up under its own imported name.
    for module in (torch_adam, eqlr_optim.checks):
        monkeypatch.setattr(
            module,
            "_get_capturable_supported_devices",
            lambda supports_xla=True: ["cpu"],
            raising=False,
        )


class ComplexLinear(nn.Module):
    """A linear layer with complex weight and bias, trained on a real loss."""

    def __init__(
        self, in_features: int, out_features: int, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__()
        real = torch.randn(out_features, in_features, 2, dtype=dtype)
        self.weight = nn.Parameter(torch.view_as_complex(real / in_features**0.5))
        zeros = torch.zeros(out_features, 2, dtype=dtype)
        self.bias = nn.Parameter(torch.view_as_complex(zeros))

    def forward(self, x: Tensor) -> Tensor:
        return torch.view_as_real(x.to(self.weight.dtype) @ self.weight.T + self.bias)


def make_model(
    seed: int = 0, dtype: torch.dtype = torch.float32, complex_params: bool = False
) -> nn.Module:
    """Return a small MLP, or a complex linear layer, with seeded weights."""
    torch.manual_seed(seed)
    if complex_params:
        return ComplexLinear(IN_FEATURES, OUT_FEATURES, dtype)
    return nn.Sequential(
        nn.Linear(IN_FEATURES, HIDDEN, dtype=dtype),
        nn.Tanh(),
        nn.Linear(HIDDEN, OUT_FEATURES, dtype=dtype),
    )


def make_batches(
    steps: int, seed: int = 1, dtype: torch.dtype = torch.float32
) -> list[tuple[Tensor, Tensor]]:
    """Return ``steps`` seeded batches of inputs and targets."""
    generator = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype == torch.float64 else torch.float32
    return [
        (
            torch.randn(BATCH, IN_FEATURES, generator=generator, dtype=real),
            torch.randn(BATCH, OUT_FEATURES, generator=generator, dtype=real),
        )
        for _ in range(steps)
    ]


def loss_of(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Return the squared error of ``model`` on one batch."""
    x, y = batch
    out = model(x)
    if out.dim() == 3:  # a complex model returns (real, imag) pairs
        return ((out - y.unsqueeze(-1)) ** 2).mean()
    return ((out - y) ** 2).mean()


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: list[tuple[Tensor, Tensor]],
) -> None:
    """Take one optimizer step per batch."""
    for batch in batches:
        optimizer.zero_grad()
        loss_of(model, batch).backward()
        optimizer.step()


@dataclass
class Pair:
    """A plain model with EqualizedAdam and its reference with torch.optim.Adam."""

    plain: nn.Module
    reference: nn.Module
    optimizer: torch.optim.Optimizer
    reference_optimizer: torch.optim.Optimizer
    scaled: bool


def make_pair(
    constants: Constants,
    adam_kwargs: dict[str, Any],
    model_factory: Callable[[], nn.Module] = make_model,
    named: bool = False,
) -> Pair:
    """Build EqualizedAdam on a plain model and torch.optim.Adam on its reference.

    The reference is a copy of the plain model when ``constants`` is ``UNIT``,
    and its runtime-scaled twin otherwise.
    """
    plain = model_factory()
    scaled = constants != UNIT
    if scaled:
        reference = runtime_scaled(plain, **constants.kwargs())
    else:
        reference = copy.deepcopy(plain)
    params = plain.named_parameters() if named else plain.parameters()
    optimizer = EqualizedAdam(
        params, **copy.deepcopy(adam_kwargs), **constants.kwargs()
    )
    reference_optimizer = torch.optim.Adam(
        reference.parameters(), **copy.deepcopy(adam_kwargs)
    )
    return Pair(plain, reference, optimizer, reference_optimizer, scaled)


def train_pair(pair: Pair, batches: list[tuple[Tensor, Tensor]]) -> None:
    train(pair.plain, pair.optimizer, batches)
    train(pair.reference, pair.reference_optimizer, batches)


def matched_tensors(pair: Pair) -> Iterator[tuple[str, Tensor, Tensor, float]]:
    """Yield ``(name, w, r, c)`` for each parameter, where ``c * r`` must equal w."""
    if pair.scaled:
        for name, w, v, c in runtime_parameters(pair.plain, pair.reference):
            yield name, w, v, c
    else:
        reference = dict(pair.reference.named_parameters())
        for name, w in pair.plain.named_parameters():
            yield name, w, reference[name], 1.0


def differences(pair: Pair, rtol: float = 0.0) -> list[str]:
    """List every parameter and state tensor of ``pair`` that does not match.

    With ``rtol=0`` a match is bitwise (``torch.equal``). Otherwise the largest
    difference must be at most ``rtol`` times the largest magnitude of the
    expected tensor, so an entry near 0 is judged against its tensor's scale. An
    empty list means the trajectories agree.
    """
    found = []
    for name, w, r, c in matched_tensors(pair):
        state = pair.optimizer.state[w]
        reference_state = pair.reference_optimizer.state[r]
        if set(state) != set(reference_state):
            found.append(f"{name}: state keys {sorted(state)}")
            continue
        checks = [(name, w.detach(), r.detach() * c)]
        for key, power in STATE_POWERS.items():
            if key in state:
                checks.append(
                    (f"{name} {key}", state[key], reference_state[key] / c**power)
                )
        if "step" in state:
            checks.append((f"{name} step", state["step"], reference_state["step"]))
        for label, actual, expected in checks:
            if not _agree(actual.detach(), expected.detach(), rtol):
                found.append(label)
    return found


def _agree(actual: Tensor, expected: Tensor, rtol: float) -> bool:
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return False
    if rtol == 0.0:
        return torch.equal(actual, expected)
    error = (actual - expected).abs().max()
    return bool(error <= rtol * expected.abs().max())
