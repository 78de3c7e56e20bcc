"""Rows of measured ratios, written as a Markdown table and a bar chart."""

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .timing import Spread

__all__ = ["Row", "machine_description", "write_chart", "write_markdown"]


@dataclass(frozen=True)
class Row:
    """One comparison: a value of ours against a baseline's, and their ratio.

    ``ratio`` is ours / baseline, summarized over rounds; ``target`` is the
    largest ratio the comparison aims for, or None where there is no target.
    """

    section: str
    case: str
    ours: str
    baseline: str
    ours_value: float
    baseline_value: float
    unit: str
    ratio: Spread
    target: float | None = None

    @property
    def met(self) -> bool | None:
        """Whether the median ratio is within the target, or None without one."""
        if self.target is None:
            return None
        return self.ratio.median <= self.target


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or platform's guess elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(device: str = "cpu") -> list[str]:
    """Return Markdown bullet lines that name the machine, device and software."""
    lines = [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, "
        f"{torch.get_num_threads()} torch threads",
        f"- torch {torch.__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}",
    ]
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        lines.append(
            f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
            f"CUDA {torch.version.cuda}"
        )
    return lines


def _format_value(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def _format_ratio(ratio: float) -> str:
    # Three decimals, or three significant digits for a ratio below 0.01.
    return f"{ratio:.3f}" if ratio >= 0.01 else f"{ratio:.3g}"


def _format_met(row: Row) -> str:
    if row.met is None:
        return ""
    return f"≤ {row.target:.2f}: " + ("yes" if row.met else "**no**")


def write_markdown(
    path: str, title: str, header: Sequence[str], rows: Sequence[Row]
) -> None:
    """Write a Markdown page: the title, the header lines, then a table per section."""
    lines = [f"# {title}", "", *header, ""]
    sections = list(dict.fromkeys(row.section for row in rows))
    for section in sections:
        lines += [
            f"## {section}",
            "",
            "| case | ours | baseline | ours: value | baseline: value "
            "| ratio (median) | ratio (IQR) | target |",
            "|---|---|---|---:|---:|---:|---:|---|",
        ]
        for row in rows:
            if row.section != section:
                continue
            lines.append(
                f"| {row.case} | {row.ours} | {row.baseline} "
                f"| {_format_value(row.ours_value, row.unit)} "
                f"| {_format_value(row.baseline_value, row.unit)} "
                f"| {_format_ratio(row.ratio.median)} "
                f"| {_format_ratio(row.ratio.q1)}–{_format_ratio(row.ratio.q3)} "
                f"| {_format_met(row)} |"
            )
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def write_chart(path: str, title: str, rows: Sequence[Row]) -> None:
    """Write a horizontal bar chart of the ratios, with IQR whiskers and targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{row.case}: {row.ours} / {row.baseline}" for row in rows]
    medians = [row.ratio.median for row in rows]
    whiskers = [
        [row.ratio.median - row.ratio.q1 for row in rows],
        [row.ratio.q3 - row.ratio.median for row in rows],
    ]
    target_colors = {None: "tab:gray", True: "tab:green", False: "tab:red"}
    colors = [target_colors[row.met] for row in rows]
    height = max(3.0, 0.32 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(11, height))
    y = list(range(len(rows)))
    ax.barh(y, medians, xerr=whiskers, color=colors, capsize=3)
    for i, row in enumerate(rows):
        if row.target is not None:
            ax.plot([row.target, row.target], [i - 0.4, i + 0.4], color="black")
    ax.axvline(1.0, color="black", linestyle=":", linewidth=1)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    finite = [m for m in medians if math.isfinite(m)]
    ax.set_xlim(0, max([1.2, *finite]) * 1.1)
    ax.set_xlabel(
        "ratio ours / baseline (bar: median, whisker: IQR, black tick: target; "
        "green met, red missed, gray no target)"
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
