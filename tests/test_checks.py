"""EqualizedAdam rejects every invalid argument, group and step input by name.

A rejected step must leave every group as it was: parameters, moments and step
counters bitwise unchanged.
"""

from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from eqlr_optim import EqualizedAdam
from eqlr_optim.checks import UnsupportedTensorError

NAN = float("nan")
INF = float("inf")


def two_layers() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def backward(model: nn.Module) -> None:
    model.zero_grad()
    model(torch.randn(5, 4)).pow(2).sum().backward()


def snapshot(optimizer: torch.optim.Optimizer) -> list[dict[str, Tensor]]:
    """Copy every parameter and state tensor, in group order."""
    copies = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            entry = {"param": p.detach().clone()}
            for key, value in optimizer.state[p].items():
                entry[key] = value.clone()
            copies.append(entry)
    return copies


def assert_same_snapshot(
    before: list[dict[str, Tensor]], after: list[dict[str, Tensor]]
) -> None:
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert new.keys() == old.keys()
        for key in old:
            assert torch.equal(new[key], old[key]), key


INVALID_ARGUMENTS = [
    ({"lr": -0.01}, ValueError, "-0.01"),
    ({"lr": NAN}, ValueError, "nan"),
    ({"lr": INF}, ValueError, "inf"),
    ({"lr": torch.tensor([0.1, 0.2])}, ValueError, "(2,)"),
    ({"lr": torch.tensor(NAN)}, ValueError, "nan"),
    ({"lr": True}, TypeError, "True"),
    ({"lr": "0.1"}, TypeError, "'0.1'"),
    ({"eps": -1e-8}, ValueError, "-1e-08"),
    ({"eps": NAN}, ValueError, "nan"),
    ({"eps": INF}, ValueError, "inf"),
    ({"betas": (1.0, 0.999)}, ValueError, "betas[0]"),
    ({"betas": (0.9, -0.1)}, ValueError, "betas[1]"),
    ({"betas": (NAN, 0.999)}, ValueError, "betas[0]"),
    ({"betas": (0.9,)}, ValueError, "(0.9,)"),
    ({"betas": (0.9, 0.99, 0.9)}, ValueError, "(0.9, 0.99, 0.9)"),
    ({"betas": 0.9}, ValueError, "0.9"),
    ({"betas": (0.9, torch.tensor(0.99))}, ValueError, "two floats"),
    ({"betas": (0, 0.999)}, ValueError, "betas[0]"),
    ({"weight_decay": -0.1}, ValueError, "-0.1"),
    ({"weight_decay": NAN}, ValueError, "nan"),
    ({"weight_decay": INF}, ValueError, "inf"),
    ({"gain": 0.0}, ValueError, "gain"),
    ({"gain": -1.0}, ValueError, "-1.0"),
    ({"gain": NAN}, ValueError, "nan"),
    ({"gain": True}, TypeError, "True"),
    ({"gain": torch.tensor(2.0)}, TypeError, "gain.item()"),
    ({"lr_mul": -0.01}, ValueError, "lr_mul must be positive and finite, got -0.01"),
    ({"lr_mul": INF}, ValueError, "inf"),
    ({"lr_mul": False}, TypeError, "False"),
    ({"lr_mul": "1"}, TypeError, "'1'"),
    ({"scale": 0}, ValueError, "scale must be positive and finite, got 0"),
    ({"scale": -0.5}, ValueError, "-0.5"),
    ({"scale": NAN}, ValueError, "nan"),
    ({"scale": True}, TypeError, "True"),
    ({"scale": torch.tensor(0.5)}, TypeError, "scale.item()"),
]


@pytest.mark.parametrize(("kwargs", "error", "text"), INVALID_ARGUMENTS)
def test_argument_rejected(kwargs: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error) as info:
        EqualizedAdam(two_layers().parameters(), **kwargs)
    assert text in str(info.value)


@pytest.mark.parametrize(("kwargs", "error", "text"), INVALID_ARGUMENTS)
def test_group_value_rejected(kwargs: dict[str, Any], error: type, text: str) -> None:
    model = two_layers()
    groups = [{"params": model[0].parameters()}, {"params": model[2].parameters()}]
    groups[1].update(kwargs)
    with pytest.raises(error) as info:
        EqualizedAdam(groups)
    assert text in str(info.value)


@pytest.mark.parametrize(("kwargs", "error", "text"), INVALID_ARGUMENTS)
def test_add_param_group_rejected(
    kwargs: dict[str, Any], error: type, text: str
) -> None:
    model = two_layers()
    optimizer = EqualizedAdam(model[0].parameters())
    with pytest.raises(error) as info:
        optimizer.add_param_group({"params": model[2].parameters(), **kwargs})
    assert text in str(info.value)
    assert len(optimizer.param_groups) == 1


def test_numpy_constants_stored_as_float() -> None:
    optimizer = EqualizedAdam(
        two_layers().parameters(), gain=np.float32(0.5), lr_mul=np.float64(2.0)
    )
    group = optimizer.param_groups[0]
    assert type(group["gain"]) is float
    assert type(group["lr_mul"]) is float
    assert group["gain"] == 0.5


def test_tensor_lr_accepted() -> None:
    model = two_layers()
    optimizer = EqualizedAdam(model.parameters(), lr=torch.tensor(0.01), foreach=False)
    backward(model)
    optimizer.step()
    assert all(p.isfinite().all() for p in model.parameters())


def test_zero_fan_in_names_parameter() -> None:
    model = nn.Linear(0, 3)
    with pytest.raises(ValueError) as info:
        EqualizedAdam(model.named_parameters())
    assert "weight" in str(info.value)
    assert "(3, 0)" in str(info.value)
    assert "'scale'" in str(info.value)


def test_zero_fan_in_unnamed_parameter() -> None:
    with pytest.raises(ValueError) as info:
        EqualizedAdam(nn.Linear(0, 3).parameters())
    assert "parameter 0" in str(info.value)


def test_zero_fan_in_with_scale_steps() -> None:
    model = nn.Linear(0, 3)
    optimizer = EqualizedAdam(model.parameters(), scale=1.0)
    model(torch.randn(2, 0)).sum().backward()
    optimizer.step()
    assert optimizer.state[model.bias]["step"].item() == 1.0


def test_parameter_in_two_groups_rejected() -> None:
    model = two_layers()
    groups = [{"params": model.parameters()}, {"params": model[0].parameters()}]
    with pytest.raises(ValueError, match="more than one parameter group"):
        EqualizedAdam(groups)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"fused": True, "foreach": True}, "foreach"),
        ({"fused": True, "differentiable": True}, "differentiable"),
    ],
)
def test_torch_flag_conflicts_kept(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(RuntimeError, match=text):
        EqualizedAdam(two_layers().parameters(), **kwargs)


def test_tensor_lr_with_foreach_rejected() -> None:
    with pytest.raises(ValueError, match="foreach"):
        EqualizedAdam(two_layers().parameters(), lr=torch.tensor(0.1), foreach=True)


NEAR_MISSES = [
    ("lr_mult", "lr_mul"),
    ("lrmul", "lr_mul"),
    ("lr_multiplier", "lr_mul"),
    ("LR_MUL", "lr_mul"),
    ("lr-mul", "lr_mul"),
    ("Lr_Mul", "lr_mul"),
    ("scales", "scale"),
    ("Scale", "scale"),
    ("wscale", "scale"),
    ("gains", "gain"),
    ("Gain", "gain"),
    ("GAIN", "gain"),
    ("weight_gain", "gain"),
    ("learning_rate", "lr"),
    ("LR", "lr"),
    ("epsilon", "eps"),
    ("beta", "betas"),
    ("Weight-Decay", "weight_decay"),
    ("AMSGrad", "amsgrad"),
]


@pytest.mark.parametrize(("key", "right"), NEAR_MISSES)
def test_near_miss_key_rejected(key: str, right: str) -> None:
    model = two_layers()
    with pytest.raises(ValueError) as info:
        EqualizedAdam([{"params": model.parameters(), key: 0.5}])
    assert f"did you mean {right!r}" in str(info.value)


@pytest.mark.parametrize(("key", "right"), NEAR_MISSES[:4])
def test_near_miss_key_in_add_param_group(key: str, right: str) -> None:
    model = two_layers()
    optimizer = EqualizedAdam(model[0].parameters())
    with pytest.raises(ValueError, match=f"did you mean {right!r}"):
        optimizer.add_param_group({"params": model[2].parameters(), key: 0.5})


# Keys that torch's schedulers, timm and user code store in param groups.
FOREIGN_KEYS = {
    "initial_lr": 0.01,
    "max_lr": 0.1,
    "min_lr": 1e-5,
    "base_lr": 0.01,
    "base_momentum": 0.85,
    "max_momentum": 0.95,
    "name": "decoder",
    "lr_scale": 0.5,
    "layer_id": 3,
    "weight_decay_exempt": True,
}


@pytest.mark.parametrize(("key", "value"), FOREIGN_KEYS.items())
def test_foreign_key_accepted(key: str, value: object) -> None:
    model = two_layers()
    optimizer = EqualizedAdam([{"params": model.parameters(), key: value}])
    backward(model)
    optimizer.step()
    assert optimizer.param_groups[0][key] == value


def test_param_names_accepted() -> None:
    model = two_layers()
    optimizer = EqualizedAdam(model.named_parameters())
    backward(model)
    optimizer.step()
    assert optimizer.param_groups[0]["param_names"][0] == "0.weight"


def test_one_cycle_scheduler_runs() -> None:
    model = two_layers()
    optimizer = EqualizedAdam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.1, total_steps=4
    )
    for _ in range(3):
        backward(model)
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["max_lr"] == 0.1
    assert all(p.isfinite().all() for p in model.parameters())


def two_group_optimizer(**kwargs: Any) -> tuple[nn.Module, EqualizedAdam]:
    model = two_layers()
    optimizer = EqualizedAdam(
        [{"params": model[0].parameters()}, {"params": model[2].parameters()}],
        lr=0.01,
        **kwargs,
    )
    backward(model)
    optimizer.step()
    backward(model)
    return model, optimizer


GROUP_CHANGES = [
    ("lr_mul", -1.0),
    ("lr_mul", True),
    ("scale", 0.0),
    ("gain", NAN),
    ("lr", NAN),
    ("lr", -0.1),
    ("eps", -1.0),
    ("betas", (0.9, 1.0)),
    ("weight_decay", INF),
]


@pytest.mark.parametrize("group_index", [0, 1])
@pytest.mark.parametrize(("key", "value"), GROUP_CHANGES)
@pytest.mark.parametrize(
    "path", [{"foreach": False}, {"foreach": True}, {"fused": True}]
)
def test_invalid_change_leaves_state(
    group_index: int, key: str, value: object, path: dict[str, bool]
) -> None:
    _, optimizer = two_group_optimizer(**path)
    optimizer.param_groups[group_index][key] = value
    before = snapshot(optimizer)
    with pytest.raises((ValueError, TypeError)):
        optimizer.step()
    assert_same_snapshot(before, snapshot(optimizer))


def test_invalid_change_step_count_kept() -> None:
    _, optimizer = two_group_optimizer()
    optimizer.param_groups[1]["lr_mul"] = -1.0
    with pytest.raises(ValueError, match="lr_mul must be positive and finite"):
        optimizer.step()
    steps = [s["step"].item() for s in optimizer.state.values()]
    assert steps == [1.0] * 4


def test_invalid_change_names_group() -> None:
    _, optimizer = two_group_optimizer()
    optimizer.param_groups[1]["lr_mul"] = -1.0
    with pytest.raises(ValueError, match="^param group 1: lr_mul"):
        optimizer.step()


@pytest.mark.parametrize("group_index", [0, 1])
def test_near_miss_key_added_between_steps(group_index: int) -> None:
    _, optimizer = two_group_optimizer()
    optimizer.param_groups[group_index]["lr_mult"] = 0.01
    before = snapshot(optimizer)
    with pytest.raises(ValueError, match="did you mean 'lr_mul'"):
        optimizer.step()
    assert_same_snapshot(before, snapshot(optimizer))


def test_deleted_constant_key_rejected() -> None:
    _, optimizer = two_group_optimizer()
    del optimizer.param_groups[0]["gain"]
    with pytest.raises(TypeError, match="gain must be a positive finite float"):
        optimizer.step()


def test_sparse_gradient_rejected() -> None:
    embedding = nn.Embedding(10, 4, sparse=True)
    optimizer = EqualizedAdam(embedding.parameters())
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(UnsupportedTensorError, match="SparseAdam"):
        optimizer.step()
    assert len(optimizer.state) == 0


def test_sparse_error_is_runtime_error() -> None:
    assert issubclass(UnsupportedTensorError, RuntimeError)
    assert issubclass(UnsupportedTensorError, TypeError)


def test_sparse_in_second_group_leaves_first() -> None:
    model = two_layers()
    embedding = nn.Embedding(10, 4, sparse=True)
    optimizer = EqualizedAdam(
        [{"params": model.parameters()}, {"params": embedding.parameters()}]
    )
    backward(model)
    optimizer.step()
    backward(model)
    embedding(torch.tensor([1, 2])).sum().backward()
    before = snapshot(optimizer)
    with pytest.raises(RuntimeError, match="sparse"):
        optimizer.step()
    assert_same_snapshot(before, snapshot(optimizer))


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"capturable": True}, "capturable=False"),
        ({"differentiable": True}, "differentiable=False"),
    ],
)
def test_unsupported_flag_rejected_at_step(kwargs: dict[str, Any], text: str) -> None:
    model = two_layers()
    optimizer = EqualizedAdam(model.parameters(), **kwargs)
    backward(model)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(UnsupportedTensorError, match=text):
        optimizer.step()
    assert len(optimizer.state) == 0
    for old, p in zip(before, model.parameters(), strict=True):
        assert torch.equal(p, old)


def test_fused_complex_rejected() -> None:
    p = nn.Parameter(torch.randn(3, 4, dtype=torch.complex64))
    p.grad = torch.randn(3, 4, dtype=torch.complex64)
    optimizer = EqualizedAdam([p], fused=True)
    with pytest.raises(UnsupportedTensorError, match="fused=False"):
        optimizer.step()
    assert len(optimizer.state) == 0


def test_constant_follows_shape_change() -> None:
    """A tensor given a new shape between steps gets the constant of that shape."""
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(3, 4))
    optimizer = EqualizedAdam([weight], lr=0.1)
    weight.grad = torch.randn(3, 4)
    optimizer.step()

    # fan_in goes from 4 to 16, so c halves.
    weight.data = torch.randn(3, 16)
    weight.grad = torch.randn(3, 16)
    optimizer.state.clear()
    reference = nn.Parameter(weight.detach().clone())
    reference.grad = weight.grad.clone()
    fresh = EqualizedAdam([reference], lr=0.1)

    optimizer.step()
    fresh.step()

    assert torch.equal(weight.detach(), reference.detach())


def test_param_groups_are_callers_dicts() -> None:
    model = two_layers()
    first = {"params": model[0].parameters()}
    second = {"params": model[2].parameters(), "lr_mul": 0.5}
    optimizer = EqualizedAdam([first], lr=0.01)
    optimizer.add_param_group(second)
    assert optimizer.param_groups[0] is first
    assert optimizer.param_groups[1] is second


def test_lr_change_through_callers_dict() -> None:
    weight = nn.Parameter(torch.randn(3, 4))
    group: dict[str, Any] = {"params": [weight]}
    optimizer = EqualizedAdam([group], lr=0.1)
    group["lr"] = 0.0
    weight.grad = torch.randn(3, 4)
    before = weight.detach().clone()
    optimizer.step()
    assert torch.equal(weight.detach(), before)


def test_rejected_group_leaves_callers_dict() -> None:
    params = [nn.Parameter(torch.randn(3, 4))]
    group = {"params": params, "lr_mul": -1.0}
    with pytest.raises(ValueError, match="lr_mul"):
        EqualizedAdam([group])
    assert group == {"params": params, "lr_mul": -1.0}


FLAG_CHANGES = [
    {"lr": torch.tensor(0.01), "foreach": True},
    {"betas": (torch.tensor(0.9), torch.tensor(0.999)), "foreach": True},
    {"fused": True, "differentiable": True},
    {"foreach": True, "differentiable": True},
]


@pytest.mark.parametrize("change", FLAG_CHANGES)
def test_flag_change_leaves_state(change: dict[str, Any]) -> None:
    """torch raises for these in adam(), after earlier groups have stepped."""
    _, optimizer = two_group_optimizer()
    optimizer.param_groups[1].update(change)
    before = snapshot(optimizer)
    with pytest.raises(RuntimeError):
        optimizer.step()
    assert_same_snapshot(before, snapshot(optimizer))
