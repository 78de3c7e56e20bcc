"""Run every benchmark on a CUDA device, timed with CUDA events.

Usage: ``python -m benchmarks.cuda [--size full|tiny] [--output-dir DIR]``. On a
machine without CUDA it prints that it needs CUDA and exits with status 0.
"""

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from .models import ModelSizes, Trainer
from .report import machine_description
from .run import (
    PRESETS,
    default_output_dir,
    describe_method,
    run_all,
    write_results,
)
from .training import persistent_bytes

__all__ = ["CUDA_PRESETS", "cuda_peak_bytes", "cuda_timer", "main"]

CUDA_PRESETS = {
    # A step takes milliseconds on a GPU, so each round times many of them.
    "full": replace(
        PRESETS["full"],
        models=ModelSizes(synthesis_channels=128, synthesis_batch=32),
        rounds=11,
        step_iters=20,
        training_iters=20,
    ),
    "tiny": PRESETS["tiny"],
}


def cuda_timer(fn: Callable[[], object], iters: int) -> float:
    """Return the seconds per call of ``fn`` on the current stream, from CUDA events.

    The events bracket the work queued by ``iters`` calls, so the time includes
    any gap in which the GPU waits for Python to launch the next kernel.
    """
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / iters


def cuda_peak_bytes(trainer: Trainer) -> int:
    """Return the peak bytes of CUDA tensor memory during one training step.

    Measured as on the CPU: one step after a warm-up step with gradients freed,
    counting the parameters and optimizer state plus the peak that the step adds
    to what was allocated before it. Other models alive in the process are not
    counted.
    """
    trainer.step()
    trainer.zero_grad()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    trainer.step()
    torch.cuda.synchronize()
    added = torch.cuda.max_memory_allocated() - before
    return persistent_bytes(trainer) + added


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run every benchmark on CUDA and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        choices=sorted(CUDA_PRESETS),
        default="full",
        help="preset of sizes and rounds; 'tiny' is for smoke tests (default: full)",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="folder for RESULTS-cuda.md and RESULTS-cuda.png (default: "
        "benchmarks/ for the full preset, benchmark-output/ for the tiny one, so "
        "that a smoke run keeps the recorded results)",
    )
    parser.add_argument("--quiet", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = default_output_dir(args.size)

    if not torch.cuda.is_available():
        print(
            "benchmarks.cuda needs a CUDA device and found none; nothing was measured."
        )
        return 0

    sizes = CUDA_PRESETS[args.size]
    start = time.perf_counter()
    rows = run_all(sizes, cuda_timer, cuda_peak_bytes, "cuda", not args.quiet)
    elapsed = time.perf_counter() - start

    header = machine_description("cuda") + describe_method(
        sizes, args.size, elapsed, "CUDA events around each round"
    )
    markdown, chart = write_results(
        rows,
        args.output_dir,
        "EqualizedAdam benchmarks on CUDA",
        header,
        "RESULTS-cuda",
    )
    with open(markdown, encoding="utf-8") as f:
        print(f.read())
    print(f"wrote {markdown} and {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
