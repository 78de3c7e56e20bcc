"""Run every benchmark on the CPU and write the table and the chart.

Usage: ``python -m benchmarks.run [--size full|tiny] [--output-dir DIR]``.
"""

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from .bandwidth import bench_bandwidth
from .models import MODELS, ModelSizes
from .report import Row, machine_description, write_chart, write_markdown
from .step import bench_step, stylegan2_shapes, worst_case_shapes
from .timing import Timer, cpu_timer, process_timer
from .training import PeakMemory, bench_training, cpu_peak_bytes

__all__ = ["PRESETS", "Sizes", "default_output_dir", "main", "run_all"]

CLOCKS: dict[str, tuple[Timer, str]] = {
    "wall": (cpu_timer, "wall clock (time.perf_counter) around each round"),
    "process": (
        process_timer,
        "CPU time of all this process's threads (time.process_time) around each round",
    ),
}

STEP_TARGETS = {"StyleGAN2 set": 1.02, "worst case": 1.10}
"""Largest median time ratio aimed for on the foreach and fused paths."""


@dataclass(frozen=True)
class Sizes:
    """Sizes and round counts of the benchmarks."""

    stylegan2_width: float = 1.0
    worst_case_count: int = 200
    worst_case_rows: int = 256
    worst_case_first_fan_in: int = 256
    models: ModelSizes = field(default_factory=ModelSizes)
    rounds: int = 25
    step_iters: int = 3
    training_iters: int = 10


PRESETS = {
    "full": Sizes(),
    "tiny": Sizes(
        stylegan2_width=1 / 64,
        worst_case_rows=2,
        worst_case_first_fan_in=8,
        models=ModelSizes(
            mapping_width=16,
            mapping_batch=4,
            synthesis_channels=4,
            synthesis_resolution=4,
            synthesis_batch=2,
            gan_hidden=16,
            gan_pixels=16,
            gan_batch=4,
        ),
        rounds=2,
        step_iters=1,
        training_iters=1,
    ),
}


def run_all(
    sizes: Sizes,
    timer: Timer,
    peak_memory: PeakMemory,
    device: str = "cpu",
    show_progress: bool = True,
) -> list[Row]:
    """Run the step, training and bandwidth benchmarks and return their rows."""
    step_sets = {
        "StyleGAN2 set": stylegan2_shapes(sizes.stylegan2_width),
        "worst case": worst_case_shapes(
            sizes.worst_case_count, sizes.worst_case_rows, sizes.worst_case_first_fan_in
        ),
    }
    jobs: list[tuple[str, Callable[[], list[Row]]]] = []
    for case, shapes in step_sets.items():
        for path in ("single-tensor", "foreach", "fused"):
            # The single-tensor loop gets no target: it is not the fast path, and
            # torch.optim.Adam pays the same per-tensor cost there.
            target = None if path == "single-tensor" else STEP_TARGETS[case]

            def job(case=case, shapes=shapes, path=path, target=target) -> list[Row]:
                return bench_step(
                    case,
                    shapes,
                    target,
                    sizes.rounds,
                    sizes.step_iters,
                    timer,
                    device,
                    paths=(path,),
                )

            jobs.append((f"step: {case}, {path}", job))
    for model in MODELS:

        def job(model=model) -> list[Row]:
            return bench_training(
                model,
                sizes.models,
                sizes.rounds,
                sizes.training_iters,
                timer,
                peak_memory,
                device,
            )

        jobs.append((f"training: {model}", job))
    jobs.append(
        (
            "bandwidth",
            lambda: bench_bandwidth(
                "StyleGAN2 set",
                step_sets["StyleGAN2 set"],
                sizes.rounds,
                sizes.step_iters,
                timer,
                device,
            ),
        )
    )

    rows: list[Row] = []
    with tqdm(jobs, disable=not show_progress, file=sys.stderr) as bar:
        for label, job in bar:
            bar.set_description(label)
            rows += job()
    # Time rows first, memory next, bandwidth last, as the page presents them.
    sections = list(dict.fromkeys(row.section for row in rows))
    order = {section: i for i, section in enumerate(sections)}
    return sorted(rows, key=lambda row: order[row.section])


def write_results(
    rows: Sequence[Row],
    output_dir: str,
    title: str,
    header: Sequence[str],
    stem: str,
) -> tuple[str, str]:
    """Write ``{stem}.md`` and ``{stem}.png`` to ``output_dir``; return the paths."""
    os.makedirs(output_dir, exist_ok=True)
    markdown = os.path.join(output_dir, f"{stem}.md")
    chart = os.path.join(output_dir, f"{stem}.png")
    write_markdown(markdown, title, header, rows)
    charted = [row for row in rows if row.unit != "GB/s"]
    write_chart(chart, title, charted)
    return markdown, chart


def default_output_dir(size: str) -> str:
    """Return benchmarks/ for the full preset, and benchmark-output/ otherwise."""
    if size == "full":
        return os.path.dirname(os.path.abspath(__file__))
    return "benchmark-output"


def describe_method(
    sizes: Sizes, preset: str, elapsed: float, timing: str
) -> list[str]:
    """Return the header lines that describe how the numbers were measured."""
    return [
        f"- preset `{preset}`: {sizes.rounds} rounds; {sizes.step_iters} steps per "
        f"round for the optimizer step and the bandwidth, {sizes.training_iters} "
        "training steps per round; total run time "
        f"{elapsed:.0f} s",
        f"- timing: {timing}. Competitors run interleaved in one process, in an "
        "order that rotates each round; a ratio is ours / baseline within one "
        "round, and the table gives the median and interquartile range over rounds",
        "- peak memory: one training step after a warm-up step, gradients freed "
        "first; parameters and optimizer state plus the peak of the tensors the "
        "step allocates",
        "- optimizers in the training step use torch's default implementation for "
        "the device (single-tensor on the CPU, foreach on CUDA), lr 2e-3, "
        "betas (0, 0.99)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run every benchmark on the CPU and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        choices=sorted(PRESETS),
        default="full",
        help="preset of sizes and rounds; 'tiny' is for smoke tests (default: full)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch intra-op threads (default: the cores this process may use)",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="folder for RESULTS.md and RESULTS.png (default: benchmarks/ for the "
        "full preset, benchmark-output/ for the tiny one, so that a smoke run "
        "keeps the recorded results)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "process"),
        default="wall",
        help="'wall' times elapsed time; 'process' times the CPU seconds of this "
        "process, which varies less on a shared machine (default: wall)",
    )
    parser.add_argument("--quiet", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = default_output_dir(args.size)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")

    torch.set_num_threads(args.threads)
    sizes = PRESETS[args.size]
    start = time.perf_counter()
    timer, timing = CLOCKS[args.clock]
    rows = run_all(sizes, timer, cpu_peak_bytes, "cpu", not args.quiet)
    elapsed = time.perf_counter() - start

    header = machine_description("cpu") + describe_method(
        sizes, args.size, elapsed, timing
    )
    markdown, chart = write_results(
        rows, args.output_dir, "EqualizedAdam benchmarks on the CPU", header, "RESULTS"
    )
    with open(markdown, encoding="utf-8") as f:
        print(f.read())
    print(f"wrote {markdown} and {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
