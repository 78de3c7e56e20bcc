"""state_dict of EqualizedAdam: torch.optim.Adam's layout, resumes bit for bit."""

import copy
import io
from typing import Any

import pytest
import torch
from helpers import (
    POWER_OF_TWO,
    UNIT,
    allow_cpu_capturable,
    differences,
    make_batches,
    make_model,
    make_pair,
    train,
    train_pair,
)

from eqlr_optim import EqualizedAdam

PATHS: dict[str, dict[str, Any]] = {
    "single_tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "capturable": {"capturable": True, "foreach": False},
    "tensor_lr": {"lr": torch.tensor(0.01), "foreach": False},
    "amsgrad_decoupled": {
        "amsgrad": True,
        "weight_decay": 0.1,
        "decoupled_weight_decay": True,
    },
}

STEPS_BEFORE = 2
STEPS_AFTER = 3


@pytest.fixture(autouse=True)
def cpu_capturable(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_cpu_capturable(monkeypatch)


def _round_trip(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Return ``state_dict`` after torch.save and torch.load, as a checkpoint is."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    loaded: dict[str, Any] = torch.load(buffer, weights_only=True)
    return loaded


def _adam_kwargs(path: str) -> dict[str, Any]:
    return {"lr": 0.01, **PATHS[path]}


@pytest.mark.parametrize("amsgrad", [False, True])
def test_state_dict_layout_of_torch(amsgrad: bool) -> None:
    pair = make_pair(UNIT, {"amsgrad": amsgrad})
    train_pair(pair, make_batches(1))
    ours = pair.optimizer.state_dict()
    theirs = pair.reference_optimizer.state_dict()
    assert ours["state"].keys() == theirs["state"].keys()
    for key, entry in ours["state"].items():
        assert entry.keys() == theirs["state"][key].keys()
    group_keys = set(ours["param_groups"][0]) - {"gain", "lr_mul", "scale"}
    assert group_keys == set(theirs["param_groups"][0])


def test_state_dict_saves_constants() -> None:
    model = make_model()
    optimizer = EqualizedAdam(model.parameters(), **POWER_OF_TWO.kwargs())
    group = optimizer.state_dict()["param_groups"][0]
    assert group["gain"] == POWER_OF_TWO.gain
    assert group["lr_mul"] == POWER_OF_TWO.lr_mul
    assert group["scale"] is None


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("resume", [True, False], ids=["resumed", "fresh"])
def test_resume_bitwise(path: str, resume: bool) -> None:
    """Saving, loading into a fresh optimizer and training on changes nothing.

    The ``fresh`` case starts a new optimizer without the checkpoint and must
    differ, so the comparison can fail.
    """
    batches = make_batches(STEPS_BEFORE + STEPS_AFTER)
    pair = make_pair(POWER_OF_TWO, _adam_kwargs(path))
    train_pair(pair, batches)

    stopped = make_pair(POWER_OF_TWO, _adam_kwargs(path))
    train(stopped.plain, stopped.optimizer, batches[:STEPS_BEFORE])
    checkpoint = _round_trip(stopped.optimizer.state_dict())
    stopped.optimizer = EqualizedAdam(
        stopped.plain.parameters(), **_adam_kwargs(path), **POWER_OF_TWO.kwargs()
    )
    if resume:
        stopped.optimizer.load_state_dict(checkpoint)
    train(stopped.plain, stopped.optimizer, batches[STEPS_BEFORE:])
    stopped.reference, stopped.reference_optimizer = (
        pair.reference,
        pair.reference_optimizer,
    )

    assert (differences(stopped) == []) == resume


@pytest.mark.parametrize("path", PATHS)
def test_torch_checkpoint_loads_and_back(path: str) -> None:
    """A torch.optim.Adam checkpoint resumes in EqualizedAdam, and the reverse."""
    batches = make_batches(3)
    pair = make_pair(UNIT, _adam_kwargs(path))
    train(pair.reference, pair.reference_optimizer, batches[:1])
    pair.plain.load_state_dict(pair.reference.state_dict())
    pair.optimizer.load_state_dict(_round_trip(pair.reference_optimizer.state_dict()))
    train_pair(pair, batches[1:2])

    reference_kwargs = copy.deepcopy(_adam_kwargs(path))
    pair.reference_optimizer = torch.optim.Adam(
        pair.reference.parameters(), **reference_kwargs
    )
    pair.reference_optimizer.load_state_dict(_round_trip(pair.optimizer.state_dict()))
    train_pair(pair, batches[2:])

    assert differences(pair) == []


def test_torch_checkpoint_keeps_constants() -> None:
    model = make_model()
    torch_optimizer = torch.optim.Adam(model.parameters())
    optimizer = EqualizedAdam(model.parameters(), **POWER_OF_TWO.kwargs())
    optimizer.load_state_dict(torch_optimizer.state_dict())
    assert optimizer.param_groups[0]["lr_mul"] == POWER_OF_TWO.lr_mul


def _saved_with_lr_mul(lr_mul: float, named: bool) -> dict[str, Any]:
    model = make_model()
    params = model.named_parameters() if named else model.parameters()
    optimizer = EqualizedAdam(params, gain=2.0, lr_mul=lr_mul)
    return optimizer.state_dict()


def _optimizer_with_lr_mul(lr_mul: float, named: bool) -> EqualizedAdam:
    model = make_model()
    params = model.named_parameters() if named else model.parameters()
    return EqualizedAdam(params, gain=2.0, lr_mul=lr_mul)


def test_changed_constants_raise_with_name() -> None:
    optimizer = _optimizer_with_lr_mul(0.5, named=True)
    with pytest.raises(ValueError, match="parameter '0.weight'") as raised:
        optimizer.load_state_dict(_saved_with_lr_mul(0.25, named=True))
    message = str(raised.value)
    assert "c = 0.125" in message
    assert "c = 0.25" in message
    assert "constants='load'" in message
    assert "constants='keep'" in message


def test_changed_constants_raise_with_position() -> None:
    optimizer = _optimizer_with_lr_mul(0.5, named=False)
    with pytest.raises(ValueError, match=r"group 0, parameter 0 of shape \(16, 16\)"):
        optimizer.load_state_dict(_saved_with_lr_mul(0.25, named=False))


def test_changed_constants_leave_optimizer() -> None:
    optimizer = _optimizer_with_lr_mul(0.5, named=False)
    with pytest.raises(ValueError):
        optimizer.load_state_dict(_saved_with_lr_mul(0.25, named=False))
    assert optimizer.param_groups[0]["lr_mul"] == 0.5


def test_equal_constants_load_without_error() -> None:
    optimizer = EqualizedAdam(make_model().parameters(), scale=0.125)
    saved = EqualizedAdam(make_model().parameters(), scale=0.125).state_dict()
    optimizer.load_state_dict(saved)
    assert optimizer.param_groups[0]["scale"] == 0.125


def test_constants_load_takes_saved() -> None:
    optimizer = _optimizer_with_lr_mul(0.5, named=False)
    optimizer.load_state_dict(_saved_with_lr_mul(0.25, named=False), constants="load")
    assert optimizer.param_groups[0]["lr_mul"] == 0.25


def test_constants_keep_keeps_current() -> None:
    optimizer = _optimizer_with_lr_mul(0.5, named=False)
    optimizer.load_state_dict(_saved_with_lr_mul(0.25, named=False), constants="keep")
    assert optimizer.param_groups[0]["lr_mul"] == 0.5


def test_constants_mode_invalid() -> None:
    optimizer = _optimizer_with_lr_mul(0.5, named=False)
    with pytest.raises(ValueError, match="constants must be"):
        optimizer.load_state_dict(
            _saved_with_lr_mul(0.5, named=False),
            constants="ignore",  # type: ignore[arg-type]
        )
