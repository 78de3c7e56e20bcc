"""Optimizer step of EqualizedAdam against torch.optim.Adam on the same tensors."""

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from eqlr_optim import EqualizedAdam
from eqlr_optim.scales import DEFAULT_GAIN, equalized_scale

from .report import Row
from .timing import Timer, interleave, round_ratios, summarize

__all__ = [
    "PATHS",
    "bench_step",
    "distinct_scales",
    "make_optimizers",
    "stylegan2_shapes",
    "worst_case_shapes",
]

PATHS: dict[str, dict[str, bool]] = {
    "single-tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}
"""Keyword arguments that select each implementation of torch's Adam."""

# Channels per resolution of a StyleGAN2 generator at 256x256.
_STYLEGAN2_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}


def stylegan2_shapes(width: float = 1.0) -> list[tuple[int, ...]]:
    """Return the tensor shapes of a StyleGAN2-like synthesis network at 256x256.

    The network starts from a learned 4x4 constant. Each resolution has two
    modulated 3x3 convolutions (one at 4x4) and a 1x1 toRGB layer. Each of these
    has a weight, a bias and a style affine layer of 512 inputs with its own bias.
    Each 3x3 convolution also has a scalar noise strength. At ``width=1`` this is
    28M parameters in 94 tensors with 8 distinct constants. ``width`` scales every
    channel count, so that tests can run the same structure tiny.
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")

    def channels(n: int) -> int:
        return max(1, round(n * width))

    w_dim = channels(512)
    shapes: list[tuple[int, ...]] = []

    def modulated(out_ch: int, in_ch: int, kernel: int) -> None:
        shapes.extend(
            [(in_ch, w_dim), (in_ch,), (out_ch, in_ch, kernel, kernel), (out_ch,)]
        )
        if kernel == 3:
            shapes.append(())

    previous = channels(_STYLEGAN2_CHANNELS[4])
    shapes.append((1, previous, 4, 4))
    for resolution, nominal in _STYLEGAN2_CHANNELS.items():
        out_ch = channels(nominal)
        if resolution > 4:
            modulated(out_ch, previous, 3)
        modulated(out_ch, out_ch, 3)
        modulated(3, out_ch, 1)
        previous = out_ch
    return shapes


def worst_case_shapes(
    count: int = 200, rows: int = 256, first_fan_in: int = 256
) -> list[tuple[int, ...]]:
    """Return ``count`` matrices (rows, first_fan_in + k), each with its own constant.

    Every tensor has a distinct fan_in, so EqualizedAdam makes one kernel call per
    tensor where torch.optim.Adam makes one for the whole group. At the defaults
    this is about 18M parameters.
    """
    return [(rows, first_fan_in + k) for k in range(count)]


def distinct_scales(
    shapes: Sequence[tuple[int, ...]], gain: float = DEFAULT_GAIN
) -> int:
    """Return how many distinct constants c the shape rule gives these shapes."""
    return len({equalized_scale(shape, gain, 1.0) for shape in shapes})


def _parameters(
    shapes: Sequence[tuple[int, ...]], device: str, seed: int
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    # Two sets of parameters with identical values and gradients, in separate memory.
    generator = torch.Generator().manual_seed(seed)
    ours, theirs = [], []
    for shape in shapes:
        std = 1.0 / math.sqrt(max(1, math.prod(shape[1:])))
        value = torch.randn(shape, generator=generator) * std
        grad = torch.randn(shape, generator=generator) * 1e-3
        for group in (ours, theirs):
            p = nn.Parameter(value.to(device, copy=True))
            p.grad = grad.to(device, copy=True)
            group.append(p)
    return ours, theirs


def make_optimizers(
    shapes: Sequence[tuple[int, ...]], path: str, device: str = "cpu", seed: int = 0
) -> tuple[EqualizedAdam, torch.optim.Adam]:
    """Return EqualizedAdam and torch.optim.Adam on separate copies of equal tensors."""
    ours, theirs = _parameters(shapes, device, seed)
    options: dict[str, Any] = {"lr": 1e-3, **PATHS[path]}
    return EqualizedAdam(ours, **options), torch.optim.Adam(theirs, **options)


def bench_step(
    case: str,
    shapes: Sequence[tuple[int, ...]],
    target: float | None,
    rounds: int,
    iters: int,
    timer: Timer,
    device: str = "cpu",
    paths: Sequence[str] = tuple(PATHS),
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Time ``step()`` of both optimizers on every path and return a row per path."""
    numel = sum(math.prod(shape) for shape in shapes)
    label = (
        f"{case} ({numel / 1e6:.3g}M params, {len(shapes)} tensors, "
        f"{distinct_scales(shapes)} constants)"
    )
    rows = []
    for path in paths:
        if progress is not None:
            progress(f"step {case} {path}")
        ours, theirs = make_optimizers(shapes, path, device)
        times = interleave(
            {"EqualizedAdam": ours.step, "Adam": theirs.step}, rounds, iters, timer
        )
        rows.append(
            Row(
                section="Optimizer step: EqualizedAdam / torch.optim.Adam",
                case=f"{label}, {path}",
                ours="EqualizedAdam",
                baseline="torch.optim.Adam",
                ours_value=summarize(times["EqualizedAdam"]).median * 1e3,
                baseline_value=summarize(times["Adam"]).median * 1e3,
                unit="ms",
                ratio=summarize(round_ratios(times, "EqualizedAdam", "Adam")),
                target=target,
            )
        )
        del ours, theirs
    return rows
