"""Smoke tests of the benchmarks at a tiny size: they run and report every row.

No test asserts a timing: timings depend on the machine and its load.
"""

import math
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

# The benchmarks folder is not installed with the package, so import it from the
# repository root.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cuda, run  # noqa: E402
from benchmarks.models import FORMULATIONS, MODELS, build_networks  # noqa: E402
from benchmarks.step import (  # noqa: E402
    distinct_scales,
    stylegan2_shapes,
    worst_case_shapes,
)
from benchmarks.timing import interleave, summarize  # noqa: E402
from benchmarks.training import cpu_peak_bytes, persistent_bytes  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = {
    "step": "## Optimizer step: EqualizedAdam / torch.optim.Adam",
    "training": "## Training step: plain + EqualizedAdam / runtime scaling + Adam",
    "memory": "## Peak memory of a training step",
    "bandwidth": "## Fused step against streaming bandwidth",
}


def _table_rows(markdown: str) -> dict[str, list[list[str]]]:
    # Split the page into its sections' table rows, without headers and rules.
    rows: dict[str, list[list[str]]] = {}
    section = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line
            rows[section] = []
        elif line.startswith("|") and section is not None:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if cells[0] != "case" and not cells[0].startswith("---"):
                rows[section].append(cells)
    return rows


def _number(cell: str) -> float:
    return float(cell.split()[0])


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("benchmarks")
    threads = torch.get_num_threads()
    try:
        status = run.main(["--size", "tiny", "--output-dir", str(out), "--quiet"])
    finally:
        torch.set_num_threads(threads)
    assert status == 0
    return out


@pytest.fixture(scope="module")
def tables(results: Path) -> dict[str, list[list[str]]]:
    return _table_rows((results / "RESULTS.md").read_text(encoding="utf-8"))


def test_run_writes_markdown_and_chart(results: Path) -> None:
    assert (results / "RESULTS.md").is_file()
    assert (results / "RESULTS.png").read_bytes().startswith(PNG_SIGNATURE)


def test_run_header_names_machine(results: Path) -> None:
    text = (results / "RESULTS.md").read_text(encoding="utf-8")
    assert "- CPU: " in text
    assert f"torch {torch.__version__}" in text


def test_run_step_table_has_every_case(tables: dict[str, list[list[str]]]) -> None:
    cases = [row[0] for row in tables[SECTIONS["step"]]]
    for name in ("StyleGAN2 set", "worst case"):
        for path in ("single-tensor", "foreach", "fused"):
            matches = [c for c in cases if c.startswith(name) and c.endswith(path)]
            assert len(matches) == 1, (name, path, cases)


@pytest.mark.parametrize("section", ["training", "memory"])
def test_run_training_tables_have_every_model(
    tables: dict[str, list[list[str]]], section: str
) -> None:
    pairs = {(row[0], row[2]) for row in tables[SECTIONS[section]]}
    expected = {(model, baseline) for model in MODELS for baseline in FORMULATIONS[1:]}
    assert pairs == expected


def test_run_bandwidth_table_has_one_row(tables: dict[str, list[list[str]]]) -> None:
    assert len(tables[SECTIONS["bandwidth"]]) == 1


def test_run_numbers_finite_and_positive(tables: dict[str, list[list[str]]]) -> None:
    for section, rows in tables.items():
        for row in rows:
            q1, q3 = (float(x) for x in row[6].split("–"))
            values = [_number(row[3]), _number(row[4]), float(row[5]), q1, q3]
            for value in values:
                assert math.isfinite(value), (section, row)
                assert value > 0, (section, row)
            assert q1 <= float(row[5]) <= q3, (section, row)


def test_cuda_without_device_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the test covers machines without it")
    assert cuda.main(["--size", "tiny", "--quiet"]) == 0
    assert "needs a CUDA device" in capsys.readouterr().out


def test_stylegan2_shapes_full_size() -> None:
    shapes = stylegan2_shapes()
    numel = sum(math.prod(shape) for shape in shapes)
    assert 90 <= len(shapes) <= 110
    assert 25e6 <= numel <= 35e6
    assert distinct_scales(shapes) == 8


def test_worst_case_every_constant_distinct() -> None:
    shapes = worst_case_shapes()
    assert len(shapes) == 200
    assert distinct_scales(shapes) == 200


@pytest.mark.parametrize("model", MODELS)
def test_formulations_compute_same_function(model: str) -> None:
    sizes = run.PRESETS["tiny"].models
    outputs = []
    for formulation in FORMULATIONS:
        networks, _ = build_networks(
            model, formulation, sizes, torch.Generator().manual_seed(0)
        )
        first = networks[0]
        width = next(first.parameters()).shape[1]
        x = torch.randn(3, width, generator=torch.Generator().manual_seed(1))
        if model == "synthesis":
            x = torch.randn(3, width, 4, 4, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            outputs.append(first(x))
    for other in outputs[1:]:
        torch.testing.assert_close(other, outputs[0], rtol=1e-5, atol=1e-6)


def test_interleave_rotates_order() -> None:
    calls: list[str] = []
    candidates = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = interleave(candidates, rounds=3, iters=1, timer=_call_once, warmup=0)
    assert calls == ["a", "b", "c", "a", "c", "b", "c", "a", "b"]
    assert all(len(t) == 3 for t in times.values())


def _call_once(fn: object, iters: int) -> float:
    for _ in range(iters):
        fn()  # type: ignore[operator]
    return 1.0


def test_summarize_quartiles() -> None:
    spread = summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    assert spread.median == 3.0
    assert spread.q1 == 2.0
    assert spread.q3 == 4.0


def test_cpu_peak_bytes_covers_gradients() -> None:
    from benchmarks.models import make_trainer

    trainer = make_trainer("mapping", FORMULATIONS[0], run.PRESETS["tiny"].models)
    peak = cpu_peak_bytes(trainer)
    trainer.step()
    # Parameters, their gradients and Adam's two moments are live at the end.
    params = [p for g in trainer.optimizers[0].param_groups for p in g["params"]]
    gradient_bytes = sum(p.grad.nbytes for p in params)
    assert peak >= persistent_bytes(trainer) + gradient_bytes


def test_tiny_run_keeps_recorded_results() -> None:
    assert run.default_output_dir("tiny") == "benchmark-output"
    assert Path(run.default_output_dir("full")) == Path(run.__file__).parent
