"""Interleaved timing of competing callables, and the spread of the rounds."""

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Spread",
    "Timer",
    "cpu_timer",
    "process_timer",
    "interleave",
    "round_ratios",
    "summarize",
]

Timer = Callable[[Callable[[], object], int], float]
"""Return the seconds per call of ``fn`` over ``iters`` back-to-back calls."""


@dataclass(frozen=True)
class Spread:
    """Median and interquartile range of repeated measurements."""

    median: float
    q1: float
    q3: float


def summarize(values: Sequence[float]) -> Spread:
    """Return the median and quartiles of ``values``; a single value is all three."""
    if not values:
        raise ValueError("summarize needs at least one value, got none")
    if len(values) == 1:
        return Spread(values[0], values[0], values[0])
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(median, q1, q3)


def cpu_timer(fn: Callable[[], object], iters: int) -> float:
    """Return the wall-clock seconds per call of ``fn``, for work on the CPU."""
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def process_timer(fn: Callable[[], object], iters: int) -> float:
    """Return the CPU seconds of all this process's threads per call of ``fn``.

    On a machine shared with other work this changes less than wall-clock time,
    because time spent waiting for a core is not counted. Time that torch's
    worker threads spend spinning while they wait for work is counted.
    """
    start = time.process_time()
    for _ in range(iters):
        fn()
    return (time.process_time() - start) / iters


def interleave(
    candidates: Mapping[str, Callable[[], object]],
    rounds: int,
    iters: int,
    timer: Timer,
    warmup: int = 2,
) -> dict[str, list[float]]:
    """Time each candidate once per round and return its seconds per call, by round.

    The order rotates from round to round and reverses on odd rounds, so a drift in
    machine load (other processes, clock boost, a warming cache) falls on every
    candidate alike instead of on whichever runs first.
    """
    if rounds < 1 or iters < 1:
        raise ValueError(f"rounds and iters must be at least 1, got {rounds}, {iters}")
    names = list(candidates)
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        order = names[shift:] + names[:shift]
        if r % 2:
            order.reverse()
        for name in order:
            times[name].append(timer(candidates[name], iters))
    return times


def round_ratios(
    times: Mapping[str, Sequence[float]], ours: str, baseline: str
) -> list[float]:
    """Return ``ours / baseline`` for each round, pairing rounds that ran together."""
    return [a / b for a, b in zip(times[ours], times[baseline], strict=True)]
