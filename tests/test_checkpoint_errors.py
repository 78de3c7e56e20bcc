"""Checkpoints resume bitwise, and a damaged one is rejected without a change."""

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from eqlr_optim import EqualizedAdam

PATHS = {
    "single_tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "amsgrad": {"amsgrad": True},
    "amsgrad_fused": {"amsgrad": True, "fused": True},
    "l2_decay": {"weight_decay": 0.1, "foreach": True},
    "decoupled_decay": {"weight_decay": 0.1, "decoupled_weight_decay": True},
}


def model_and_data() -> tuple[nn.Module, list[Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    return model, [torch.randn(8, 6) for _ in range(6)]


def make_optimizer(model: nn.Module, kwargs: dict[str, Any]) -> EqualizedAdam:
    # Two groups with different constants, so each step runs several buckets.
    groups = [
        {"params": model[0].parameters()},
        {"params": model[2].parameters(), "lr_mul": 0.5},
    ]
    return EqualizedAdam(groups, lr=0.01, **kwargs)


def train(model: nn.Module, optimizer: EqualizedAdam, batches: list[Tensor]) -> None:
    for x in batches:
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()


def round_trip(obj: object) -> Any:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    # weights_only=True, torch's default, fails on a NumPy scalar in a group.
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("path", PATHS)
def test_resume_bitwise(path: str) -> None:
    kwargs = PATHS[path]
    model, batches = model_and_data()
    optimizer = make_optimizer(model, kwargs)
    train(model, optimizer, batches[:3])
    model_state = round_trip(model.state_dict())
    optimizer_state = round_trip(optimizer.state_dict())
    train(model, optimizer, batches[3:])

    resumed, _ = model_and_data()
    resumed.load_state_dict(model_state)
    resumed_optimizer = make_optimizer(resumed, kwargs)
    resumed_optimizer.load_state_dict(optimizer_state)
    train(resumed, resumed_optimizer, batches[3:])

    for p, q in zip(model.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(q, p)
        for key, value in optimizer.state[p].items():
            assert torch.equal(resumed_optimizer.state[q][key], value), key


def test_resume_keeps_group_constants() -> None:
    model, batches = model_and_data()
    optimizer = make_optimizer(model, {})
    train(model, optimizer, batches[:1])
    resumed_optimizer = make_optimizer(model, {})
    resumed_optimizer.load_state_dict(round_trip(optimizer.state_dict()))
    assert resumed_optimizer.param_groups[1]["lr_mul"] == 0.5


def trained_checkpoint(
    kwargs: dict[str, Any],
) -> tuple[EqualizedAdam, dict[str, Any]]:
    model, batches = model_and_data()
    optimizer = make_optimizer(model, kwargs)
    train(model, optimizer, batches[:2])
    return optimizer, copy.deepcopy(optimizer.state_dict())


def snapshot(optimizer: EqualizedAdam) -> tuple[list[dict[str, Tensor]], list[dict]]:
    states = [
        {key: value.clone() for key, value in optimizer.state[p].items()}
        for group in optimizer.param_groups
        for p in group["params"]
    ]
    groups = [
        {key: value for key, value in group.items() if key != "params"}
        for group in optimizer.param_groups
    ]
    return states, groups


def first_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    return state_dict["state"][0]


def set_item(getter: Callable[[dict], dict], key: Any, value: Any) -> Callable:
    def damage(state_dict: dict[str, Any]) -> Any:
        getter(state_dict)[key] = value
        return state_dict

    return damage


def delete_item(getter: Callable[[dict], dict], key: Any) -> Callable:
    def damage(state_dict: dict[str, Any]) -> Any:
        del getter(state_dict)[key]
        return state_dict

    return damage


def groups(state_dict: dict[str, Any]) -> dict[str, Any]:
    return state_dict


def group0(state_dict: dict[str, Any]) -> dict[str, Any]:
    return state_dict["param_groups"][0]


def state_of(state_dict: dict[str, Any]) -> dict[str, Any]:
    return state_dict["state"]


DAMAGES: dict[str, tuple[Callable, type, str]] = {
    "not a dict": (lambda sd: list(sd.items()), TypeError, "must be a dict"),
    "missing state": (delete_item(groups, "state"), ValueError, "'state'"),
    "missing param_groups": (
        delete_item(groups, "param_groups"),
        ValueError,
        "'param_groups'",
    ),
    "param_groups not a list": (
        set_item(groups, "param_groups", {"params": []}),
        TypeError,
        "must be a list",
    ),
    "state not a dict": (set_item(groups, "state", []), TypeError, "'state'"),
    "extra group": (
        lambda sd: {**sd, "param_groups": sd["param_groups"] * 2},
        ValueError,
        "4 param groups, but the optimizer has 2",
    ),
    "missing group": (
        lambda sd: {**sd, "param_groups": sd["param_groups"][:1]},
        ValueError,
        "1 param groups, but the optimizer has 2",
    ),
    "group not a dict": (
        lambda sd: {**sd, "param_groups": [[0, 1], sd["param_groups"][1]]},
        TypeError,
        "param group 0",
    ),
    "group without params": (delete_item(group0, "params"), ValueError, "'params'"),
    "missing parameter": (
        set_item(group0, "params", [0]),
        ValueError,
        "has 1 parameters, but the optimizer's group 0 has 2",
    ),
    "repeated parameter id": (
        set_item(group0, "params", [2, 2]),
        ValueError,
        "more than once",
    ),
    "state of unknown id": (
        set_item(state_of, 99, {}),
        ValueError,
        "parameter id 99",
    ),
    "state entry not a dict": (set_item(state_of, 0, [1.0]), TypeError, "[0]"),
    "missing exp_avg_sq": (
        delete_item(first_state, "exp_avg_sq"),
        ValueError,
        "'exp_avg_sq'",
    ),
    "missing step": (delete_item(first_state, "step"), ValueError, "'step'"),
    "negative step": (
        set_item(first_state, "step", torch.tensor(-1.0)),
        ValueError,
        "-1.0",
    ),
    "nan step": (set_item(first_state, "step", float("nan")), ValueError, "nan"),
    "moment wrong shape": (
        set_item(first_state, "exp_avg", torch.zeros(6, 12)),
        ValueError,
        "(6, 12)",
    ),
    "moment integer dtype": (
        set_item(first_state, "exp_avg_sq", torch.zeros(12, 6, dtype=torch.int64)),
        TypeError,
        "torch.int64",
    ),
    "moment complex dtype": (
        set_item(first_state, "exp_avg", torch.zeros(12, 6, dtype=torch.complex64)),
        TypeError,
        "torch.complex64",
    ),
    "moment not a tensor": (
        set_item(first_state, "exp_avg", [0.0] * 72),
        TypeError,
        "'exp_avg'",
    ),
    "invalid lr_mul": (set_item(group0, "lr_mul", -1.0), ValueError, "lr_mul"),
    "invalid lr": (set_item(group0, "lr", float("nan")), ValueError, "lr"),
    "invalid betas": (set_item(group0, "betas", (0.9, 1.5)), ValueError, "betas[1]"),
    "near-miss key": (set_item(group0, "lr_mult", 2.0), ValueError, "'lr_mul'"),
    "amsgrad without max_exp_avg_sq": (
        set_item(group0, "amsgrad", True),
        ValueError,
        "'max_exp_avg_sq'",
    ),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_damaged_checkpoint_rejected(name: str) -> None:
    damage, error, text = DAMAGES[name]
    optimizer, state_dict = trained_checkpoint({})
    before = snapshot(optimizer)
    with pytest.raises(error) as info:
        optimizer.load_state_dict(damage(state_dict))
    assert text in str(info.value)
    after = snapshot(optimizer)
    assert after[1] == before[1]
    for old, new in zip(before[0], after[0], strict=True):
        assert new.keys() == old.keys()
        for key in old:
            assert torch.equal(new[key], old[key]), key


def test_damaged_checkpoint_left_as_it_was() -> None:
    optimizer, state_dict = trained_checkpoint({})
    state_dict["param_groups"][0]["lr_mul"] = -1.0
    with pytest.raises(ValueError):
        optimizer.load_state_dict(state_dict)
    assert state_dict["param_groups"][0]["lr_mul"] == -1.0


def test_torch_adam_checkpoint_accepted() -> None:
    model, batches = model_and_data()
    adam = torch.optim.Adam(
        [{"params": model[0].parameters()}, {"params": model[2].parameters()}]
    )
    train(model, adam, batches[:2])  # type: ignore[arg-type]
    optimizer = make_optimizer(model, {})
    optimizer.load_state_dict(adam.state_dict())
    assert optimizer.param_groups[1]["lr_mul"] == 0.5


def test_empty_state_accepted() -> None:
    model, _ = model_and_data()
    optimizer = make_optimizer(model, {})
    fresh = make_optimizer(model, {})
    fresh.load_state_dict(optimizer.state_dict())
    assert len(fresh.state) == 0
