"""The fused step's memory traffic against the machine's streaming bandwidth."""

import math
from collections.abc import Sequence

import torch

from .report import Row
from .step import make_optimizers
from .timing import Timer, interleave, summarize

__all__ = ["ADAM_BYTES_PER_ELEMENT", "TRIAD_BYTES_PER_ELEMENT", "bench_bandwidth"]

ADAM_BYTES_PER_ELEMENT = 7 * 4
"""Adam reads param, grad, exp_avg, exp_avg_sq and writes three of them back."""

TRIAD_BYTES_PER_ELEMENT = 3 * 4
"""``a += s * b`` reads two float32 arrays and writes one of them back."""


def bench_bandwidth(
    case: str,
    shapes: Sequence[tuple[int, ...]],
    rounds: int,
    iters: int,
    timer: Timer,
    device: str = "cpu",
) -> list[Row]:
    """Compare the fused EqualizedAdam step's bandwidth with a streaming triad.

    The triad runs over arrays of as many elements as the parameter set, so both
    work from main memory once the set is larger than the caches. It updates in
    place, as Adam does, because writing to a third array would also read that
    array into the cache first and move a third more bytes than counted. The
    ratio is the fraction of the triad's bandwidth that the step reaches.
    """
    numel = sum(math.prod(shape) for shape in shapes)
    ours, _ = make_optimizers(shapes, "fused", device)
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(numel, generator=generator).to(device)
    b = torch.randn(numel, generator=generator).to(device)

    def triad() -> None:
        # A small alpha keeps a finite over any number of rounds.
        a.add_(b, alpha=1e-6)

    times = interleave({"step": ours.step, "triad": triad}, rounds, iters, timer)
    step_rates = [ADAM_BYTES_PER_ELEMENT * numel / t / 1e9 for t in times["step"]]
    triad_rates = [TRIAD_BYTES_PER_ELEMENT * numel / t / 1e9 for t in times["triad"]]
    fractions = [s / t for s, t in zip(step_rates, triad_rates, strict=True)]
    return [
        Row(
            section="Fused step against streaming bandwidth",
            case=f"{case}, {numel / 1e6:.3g}M float32 elements",
            ours="fused EqualizedAdam step (28 B/element)",
            baseline="triad a += s·b (12 B/element)",
            ours_value=summarize(step_rates).median,
            baseline_value=summarize(triad_rates).median,
            unit="GB/s",
            ratio=summarize(fractions),
        )
    ]
