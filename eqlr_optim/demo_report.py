"""Plots and report of :mod:`eqlr_optim.demo`, drawn with matplotlib's Agg backend."""

import json
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

__all__ = ["summarize", "write_outputs"]

RUN_STYLES = {
    "a": {"color": "#9ecae1", "linestyle": "-", "linewidth": 3.5},
    "b": {"color": "#08306b", "linestyle": "--", "linewidth": 1.2},
    "c": {"color": "#d94801", "linestyle": "-", "linewidth": 1.2},
}
"""Line styles that keep (a) visible under (b): a wide pale line under a dashed one."""

FINAL_WINDOW = 100
"""Steps averaged for the final losses, because single GAN losses are noisy."""


def moving_average(values: list[float], window: int) -> list[float]:
    """Return the trailing mean over up to ``window`` values at each position."""
    out = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _label_log_axis(ax: Any) -> None:
    # Ticks at 1, 2 and 5 times each power of ten, printed as plain numbers, because
    # matplotlib's default minor labels on a log axis read as 2 x 10^-3.
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Compute the report's numbers and verdict from the series of :func:`run_demo`."""
    config = results["config"]
    runs = results["runs"]
    gap_ab, gap_bc = results["gap_ab"], results["gap_bc"]
    max_gap_ab, max_gap_bc = max(gap_ab), max(gap_bc)
    max_weight = max(results["max_abs_weight_b"])
    window = min(FINAL_WINDOW, config.steps)

    losses = {}
    update_sizes: dict[str, dict[str, float]] = {}
    spreads = {}
    for run in runs:
        losses[run.key] = {
            "final_d_loss": run.d_losses[-1],
            "final_g_loss": run.g_losses[-1],
            f"mean_d_loss_last_{window}_steps": _mean(run.d_losses[-window:]),
            f"mean_g_loss_last_{window}_steps": _mean(run.g_losses[-window:]),
        }
        update_sizes[run.key] = {
            name: _mean(sizes) for name, sizes in run.update_sizes.items()
        }
        means = update_sizes[run.key].values()
        spreads[run.key] = max(means) / min(means)

    if max_gap_ab == 0.0:
        agreement = "(a) and (b) are bitwise equal at every step"
        ratio_text = ""
    else:
        agreement = (
            f"(a) and (b) agree to max |w_a - w_b| = {max_gap_ab:.2e} "
            f"({max_gap_ab / max_weight:.1e} of max |w_b|)"
        )
        ratio_text = f", {max_gap_bc / max_gap_ab:.1e} times as far"
    verdict = (
        f"{agreement} over {config.steps} {config.dtype} steps. (c) differs from (b) "
        f"by up to {max_gap_bc:.2e}{ratio_text}. Mean per-layer |dw|/|w| varies by a "
        f"factor {spreads['a']:.2f} across layers in (a), {spreads['b']:.2f} in (b) "
        f"and {spreads['c']:.2f} in (c)."
    )
    return {
        "settings": asdict(config),
        "torch_version": torch.__version__,
        "torch_threads": results.get("threads", torch.get_num_threads()),
        "machine": platform.platform(),
        "runs": {run.key: run.title for run in runs},
        "fan_in": results["fan_in"],
        "max_gap_ab": max_gap_ab,
        "final_gap_ab": gap_ab[-1],
        "initial_gap_ab": gap_ab[0],
        "max_gap_ab_relative": max_gap_ab / max_weight,
        "max_gap_bc": max_gap_bc,
        "final_gap_bc": gap_bc[-1],
        "max_abs_weight_b": max_weight,
        "losses": losses,
        "mean_update_size": update_sizes,
        "update_size_spread": spreads,
        "train_seconds": {run.key: run.train_seconds for run in runs},
        "verdict": verdict,
    }


def plot_losses(results: dict[str, Any], path: Path) -> None:
    """Plot the discriminator and generator losses of the three runs."""
    import matplotlib.pyplot as plt

    window = max(1, results["config"].steps // 100)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, attribute, title in (
        (axes[0], "d_losses", "discriminator loss"),
        (axes[1], "g_losses", "generator loss"),
    ):
        for run in results["runs"]:
            values = moving_average(getattr(run, attribute), window)
            steps = range(1, len(values) + 1)
            ax.plot(steps, values, label=run.title, **RUN_STYLES[run.key])
        ax.set_title(f"{title} (moving average over {window} steps)")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_weight_gap(results: dict[str, Any], path: Path) -> None:
    """Plot max |w_a - w_b| and max |w_b - w_c| over training on a log scale."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for key, label, style in (
        ("gap_ab", "max |w_a - w_b|: runtime-scaled vs EqualizedAdam", "b"),
        ("gap_bc", "max |w_b - w_c|: EqualizedAdam vs Adam", "c"),
    ):
        # A log scale cannot show exact zeros, so those steps are left out.
        points = [(step, gap) for step, gap in enumerate(results[key]) if gap > 0]
        if points:
            steps, gaps = zip(*points, strict=True)
            ax.plot(steps, gaps, label=label, color=RUN_STYLES[style]["color"])
    if not any(gap > 0 for gap in results["gap_ab"]):
        ax.text(
            0.02,
            0.05,
            "w_a and w_b are bitwise equal at every step",
            transform=ax.transAxes,
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("max over all parameters")
    ax.set_title(f"Distance between the runs' weights ({results['config'].dtype})")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_update_size(
    results: dict[str, Any], summary: dict[str, Any], path: Path
) -> None:
    """Plot each weight's mean |dw|/|w| per run, and its course over training."""
    import matplotlib.pyplot as plt

    names = results["weight_names"]
    runs = results["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)

    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        heights = [summary["mean_update_size"][run.key][name] for name in names]
        positions = [j + (i - 1) * width for j in range(len(names))]
        axes[0].bar(
            positions,
            heights,
            width,
            label=run.title,
            color=RUN_STYLES[run.key]["color"],
        )
    axes[0].set_xticks(range(len(names)))
    axes[0].set_xticklabels(
        [f"{name}\nfan-in {results['fan_in'][name]}" for name in names], fontsize=8
    )
    axes[0].set_yscale("log")
    _label_log_axis(axes[0])
    axes[0].set_ylabel("mean |dw| / |w| per step")
    axes[0].set_title("Relative update size of each weight")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3, axis="y", which="both")

    window = max(1, results["config"].steps // 50)
    colors = plt.get_cmap("viridis")(
        [k / max(1, len(names) - 1) for k in range(len(names))]
    )
    for run, linestyle in ((runs[1], "-"), (runs[2], ":")):
        for name, color in zip(names, colors, strict=True):
            values = moving_average(run.update_sizes[name], window)
            label = (
                f"{name} (fan-in {results['fan_in'][name]})" if run.key == "b" else None
            )
            axes[1].plot(
                range(1, len(values) + 1),
                values,
                color=color,
                linestyle=linestyle,
                label=label,
            )
    axes[1].set_yscale("log")
    _label_log_axis(axes[1])
    axes[1].set_xlabel("step")
    axes[1].set_title(
        f"Over training: (b) solid, (c) dotted (moving average over {window} steps)"
    )
    axes[1].legend(fontsize=7, ncol=2)
    axes[1].grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _digit_grid(images: torch.Tensor, columns: int) -> torch.Tensor:
    # Tile rows of 64 pixels into one image, with a one-pixel border between digits.
    rows = math.ceil(len(images) / columns)
    grid = torch.full((rows * 9 + 1, columns * 9 + 1), -1.0)
    for k, image in enumerate(images.detach().to(torch.float32).clamp(-1, 1)):
        r, c = divmod(k, columns)
        grid[1 + 9 * r : 9 + 9 * r, 1 + 9 * c : 9 + 9 * c] = image.view(8, 8)
    return grid


def plot_samples(results: dict[str, Any], path: Path, count: int = 64) -> None:
    """Show real digits beside samples of (b) and (c) from the same latent vectors."""
    import matplotlib.pyplot as plt

    config = results["config"]
    runs = results["runs"]
    rng = torch.Generator().manual_seed(config.seed + 2)
    z = torch.randn(
        (count, config.latent_size), generator=rng, dtype=results["data"].dtype
    )
    real_index = torch.randperm(len(results["data"]), generator=rng)[:count]
    panels = [("real digits", results["data"][real_index])]
    with torch.no_grad():
        for run in runs[1:]:
            panels.append((run.title, run.generator(z)))

    columns = math.isqrt(count)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 * len(panels), 4.3), constrained_layout=True
    )
    for ax, (title, images) in zip(axes, panels, strict=True):
        ax.imshow(_digit_grid(images, columns).numpy(), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(
        f"After {config.steps} steps; both generators get the same latent vectors"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(summary: dict[str, Any]) -> str:
    keys = list(summary["runs"])
    lines = ["# Equalized learning rate on a digits GAN", "", summary["verdict"], ""]

    lines += ["## Settings", "", "| setting | value |", "| --- | --- |"]
    for name, value in summary["settings"].items():
        lines.append(f"| {name} | {value} |")
    lines.append(
        f"| torch | {summary['torch_version']}, threads: {summary['torch_threads']} |"
    )
    lines.append(f"| machine | {summary['machine']} |")

    lines += ["", "## Timings", "", "| part | seconds |", "| --- | --- |"]
    for key in keys:
        lines.append(
            f"| training steps of {summary['runs'][key]} | "
            f"{summary['train_seconds'][key]:.1f} |"
        )
    for name, label in (
        ("train_wall_seconds", "data, setup, training and measurements (wall)"),
        ("plot_seconds", "plots"),
        ("total_seconds", "total (wall)"),
    ):
        lines.append(f"| {label} | {summary[name]:.1f} |")

    lines += [
        "",
        "## Distance between the runs' weights",
        "",
        "| quantity | value |",
        "| --- | --- |",
    ]
    for name in (
        "initial_gap_ab",
        "max_gap_ab",
        "final_gap_ab",
        "max_gap_ab_relative",
        "max_gap_bc",
        "final_gap_bc",
        "max_abs_weight_b",
    ):
        lines.append(f"| {name} | {summary[name]:.3e} |")

    lines += [
        "",
        "## Losses",
        "",
        "| run | " + " | ".join(summary["losses"]["a"]) + " |",
        "| --- " * (1 + len(summary["losses"]["a"])) + "|",
    ]
    for key in keys:
        values = " | ".join(f"{v:.4f}" for v in summary["losses"][key].values())
        lines.append(f"| {summary['runs'][key]} | {values} |")

    lines += [
        "",
        "## Mean relative update size |dw|/|w| per step",
        "",
        "| weight | fan-in | " + " | ".join(summary["runs"][k] for k in keys) + " |",
        "| --- " * (2 + len(keys)) + "|",
    ]
    for name, fan in summary["fan_in"].items():
        values = " | ".join(f"{summary['mean_update_size'][k][name]:.3e}" for k in keys)
        lines.append(f"| {name} | {fan} | {values} |")
    spreads = " | ".join(f"{summary['update_size_spread'][k]:.2f}" for k in keys)
    lines.append(f"| max / min | | {spreads} |")

    lines += [
        "",
        "Plots: losses.png, weight_gap.png, update_size.png, samples.png.",
        "",
    ]
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], out: Path, start: float) -> dict[str, Any]:
    """Write four plots, report.md and report.json into ``out``, and return the summary.

    ``start`` is the ``time.perf_counter()`` reading taken when the demo began.
    """
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)

    plot_start = time.perf_counter()
    plot_losses(results, out / "losses.png")
    plot_weight_gap(results, out / "weight_gap.png")
    plot_update_size(results, summary, out / "update_size.png")
    plot_samples(results, out / "samples.png")
    summary["train_wall_seconds"] = results["train_wall_seconds"]
    summary["plot_seconds"] = time.perf_counter() - plot_start
    summary["total_seconds"] = time.perf_counter() - start

    (out / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(summary))
    return summary
