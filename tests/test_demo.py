"""The digits GAN demo: its outputs, and the agreement of runs (a) and (b)."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from eqlr_optim import demo  # noqa: E402

STEPS = 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ("losses.png", "weight_gap.png", "update_size.png", "samples.png")


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    status = demo.main(["--steps", str(STEPS), "--out", str(out), "--no-progress"])
    assert status == 0
    return out


@pytest.fixture(scope="module")
def report(output: Path) -> dict[str, Any]:
    return json.loads((output / "report.json").read_text())


@pytest.mark.parametrize("name", PLOTS)
def test_demo_writes_png(output: Path, name: str) -> None:
    data = (output / name).read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000


def test_demo_writes_markdown_report(output: Path, report: dict[str, Any]) -> None:
    text = (output / "report.md").read_text()
    assert text.startswith("# Equalized learning rate on a digits GAN")
    assert report["verdict"] in text
    assert "| G.0.weight | 32 |" in text


def test_demo_report_fields(report: dict[str, Any]) -> None:
    assert report["settings"]["steps"] == STEPS
    assert report["settings"]["dtype"] == "float64"
    assert report["settings"]["betas"] == [0.0, 0.99]
    assert set(report["runs"]) == {"a", "b", "c"}
    assert set(report["losses"]) == {"a", "b", "c"}
    assert set(report["train_seconds"]) == {"a", "b", "c"}
    assert report["total_seconds"] >= report["train_wall_seconds"] > 0
    assert report["fan_in"] == {
        "G.0.weight": 32,
        "G.2.weight": 128,
        "G.4.weight": 256,
        "D.0.weight": 64,
        "D.2.weight": 256,
        "D.4.weight": 128,
    }


def test_demo_runtime_twin_matches_equalized_adam(report: dict[str, Any]) -> None:
    assert report["max_gap_ab_relative"] < 1e-9
    assert report["max_gap_ab"] < 1e-9


def test_demo_plain_adam_differs(report: dict[str, Any]) -> None:
    assert report["max_gap_bc"] > 1e-3
    assert report["max_gap_bc"] > 1e6 * report["max_gap_ab"]


def test_demo_losses_of_a_and_b_agree(report: dict[str, Any]) -> None:
    losses = report["losses"]
    for key, value in losses["a"].items():
        assert value == pytest.approx(losses["b"][key], rel=1e-9, abs=1e-12)
    assert losses["c"]["final_g_loss"] != pytest.approx(
        losses["b"]["final_g_loss"], rel=1e-6
    )


def test_demo_update_sizes_equalized(report: dict[str, Any]) -> None:
    sizes = report["mean_update_size"]
    for name, value in sizes["a"].items():
        assert value == pytest.approx(sizes["b"][name], rel=1e-9)

    # Plain Adam moves each entry by about lr whatever its scale, so the relative
    # update grows like sqrt(fan_in); the equalized runs remove that factor.
    assert sizes["c"]["G.4.weight"] > 2 * sizes["c"]["G.0.weight"]
    assert report["update_size_spread"]["b"] < report["update_size_spread"]["c"]


def test_demo_verdict_states_gaps(report: dict[str, Any]) -> None:
    assert f"{report['max_gap_ab']:.2e}" in report["verdict"]
    assert f"{report['max_gap_bc']:.2e}" in report["verdict"]


def test_demo_float32_runs_agree_closely(tmp_path: Path) -> None:
    status = demo.main(
        ["--steps", "10", "--dtype", "float32", "--out", str(tmp_path), "--no-progress"]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert status == 0
    assert report["settings"]["dtype"] == "float32"
    assert report["max_gap_ab_relative"] < 1e-4
    assert report["max_gap_bc"] > 100 * report["max_gap_ab"]


@pytest.mark.parametrize(
    "argv",
    [["--steps", "0"], ["--batch-size", "0"], ["--lr", "-1"], ["--dtype", "float16"]],
)
def test_demo_rejects_invalid_arguments(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as error:
        demo.main(argv)
    assert error.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_demo_missing_extras_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "sklearn", None)
    status = demo.main(["--steps", "1"])
    assert status == 1
    assert "pip install 'eqlr-optim[demo]'" in capsys.readouterr().err
