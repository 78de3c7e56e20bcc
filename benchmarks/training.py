"""Training step and peak memory of plain layers against runtime-scaled ones."""

import json
import os
import tempfile
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from .models import FORMULATIONS, ModelSizes, Trainer, make_trainer
from .report import Row
from .timing import Timer, interleave, round_ratios, summarize

__all__ = ["PeakMemory", "bench_training", "cpu_peak_bytes", "persistent_bytes"]

PeakMemory = Callable[[Trainer], int]
"""Return the peak bytes of tensor memory during one training step."""

OURS = FORMULATIONS[0]
BASELINES = FORMULATIONS[1:]

TIME_TARGETS = {"mapping": 0.95}
"""Largest time ratio aimed for, by model; 1.0 (never slower) for the others."""


def persistent_bytes(trainer: Trainer) -> int:
    """Return the bytes of the parameters and optimizer state, counted once each."""
    storages: dict[int, int] = {}
    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            for p in group["params"]:
                tensors = [p, *optimizer.state.get(p, {}).values()]
                for t in tensors:
                    if isinstance(t, torch.Tensor):
                        storage = t.untyped_storage()
                        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def cpu_peak_bytes(trainer: Trainer) -> int:
    """Return the peak bytes of CPU tensor memory during one training step.

    tracemalloc does not see torch's allocations, and the process's max RSS
    mixes them with the allocator's caching and the interpreter. This runs one
    step after a warm-up step (so the optimizer state exists) with all gradients
    freed, under torch.profiler with ``profile_memory=True``. The profiler then
    reports every CPU tensor allocation and free, with a running total of the
    bytes allocated since profiling began, so the largest total is the step's
    peak of new tensors (activations, gradients, temporaries). The parameters
    and optimizer state that were live before the step are added to it.
    """
    trainer.step()
    trainer.zero_grad()
    before = persistent_bytes(trainer)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        trainer.step()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    totals = [
        event["args"]["Total Allocated"]
        for event in events
        if event.get("name") == "[memory]" and event["args"].get("Device Type") == 0
    ]
    if not totals:
        raise RuntimeError("torch.profiler recorded no CPU memory events in the step")
    return before + max(totals)


def bench_training(
    model: str,
    sizes: ModelSizes,
    rounds: int,
    iters: int,
    timer: Timer,
    peak_memory: PeakMemory,
    device: str = "cpu",
) -> list[Row]:
    """Time a training step of each formulation and measure its peak memory.

    Returns a row per baseline for time, then a row per baseline for memory.
    """
    trainers = {name: make_trainer(model, name, sizes, device) for name in FORMULATIONS}
    times = interleave(
        {name: trainer.step for name, trainer in trainers.items()}, rounds, iters, timer
    )
    peaks = {name: peak_memory(trainer) for name, trainer in trainers.items()}

    time_rows, memory_rows = [], []
    for baseline in BASELINES:
        time_rows.append(
            Row(
                section="Training step: plain + EqualizedAdam / runtime scaling + Adam",
                case=model,
                ours=OURS,
                baseline=baseline,
                ours_value=summarize(times[OURS]).median * 1e3,
                baseline_value=summarize(times[baseline]).median * 1e3,
                unit="ms",
                ratio=summarize(round_ratios(times, OURS, baseline)),
                target=TIME_TARGETS.get(model, 1.0),
            )
        )
        ratio = peaks[OURS] / peaks[baseline]
        memory_rows.append(
            Row(
                section="Peak memory of a training step",
                case=model,
                ours=OURS,
                baseline=baseline,
                ours_value=peaks[OURS] / 2**20,
                baseline_value=peaks[baseline] / 2**20,
                unit="MiB",
                ratio=summarize([ratio]),
                target=1.0,
            )
        )
    return time_rows + memory_rows
