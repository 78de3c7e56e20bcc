"""Checks of arguments, group keys, step inputs and checkpoints.

Each check runs before the optimizer changes any state, so an invalid value
raises and leaves parameters, moments and step counters as they were.
"""

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.optimizer import (
    _get_capturable_supported_devices,
    _get_fused_kernels_supported_devices,
)

from .scales import check_positive_finite

__all__ = [
    "ADAM_KEYS",
    "CONSTANT_KEYS",
    "NEAR_MISS_KEYS",
    "UnsupportedTensorError",
    "check_adam_arguments",
    "check_group_keys",
    "check_group_values",
    "check_scale",
    "check_state_dict",
    "check_step_tensors",
]

CONSTANT_KEYS = ("gain", "lr_mul", "scale")
"""Group keys that set the constant c of each tensor."""

ADAM_KEYS = (
    "lr",
    "betas",
    "eps",
    "weight_decay",
    "amsgrad",
    "maximize",
    "foreach",
    "capturable",
    "differentiable",
    "fused",
    "decoupled_weight_decay",
)
"""Group keys of :class:`torch.optim.Adam`."""

NEAR_MISS_KEYS = {
    "lr_mult": "lr_mul",
    "lr_multiplier": "lr_mul",
    "lr_multiplicator": "lr_mul",
    "learning_rate_multiplier": "lr_mul",
    "lr_multiple": "lr_mul",
    "scales": "scale",
    "weight_scale": "scale",
    "wscale": "scale",
    "const": "scale",
    "gains": "gain",
    "weight_gain": "gain",
    "init_gain": "gain",
    "learning_rate": "lr",
    "epsilon": "eps",
    "beta": "betas",
}
"""Misspelt group keys that torch would accept silently, mapped to the right key.

Case and separators do not count: ``LR_MUL``, ``lr-mul`` and ``lrmul`` are
near misses of ``lr_mul`` as well. ``lr_scale`` is not listed, because
training scripts with layer-wise lr decay store a per-group lr factor under it.
"""


def _normalize_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "").replace(" ", "")


_SUGGESTED_KEYS = {
    _normalize_key(key): right for key, right in NEAR_MISS_KEYS.items()
} | {_normalize_key(key): key for key in CONSTANT_KEYS + ADAM_KEYS}


class UnsupportedTensorError(TypeError, RuntimeError):
    """A parameter or gradient that the selected Adam kernel cannot update.

    Raised for a sparse gradient and for tensors that ``fused=True``,
    ``capturable=True`` or ``differentiable=True`` do not support, before any
    state changes. :class:`torch.optim.Adam` raises RuntimeError (or
    AssertionError) for these cases during the step, so this class is a
    RuntimeError too, and code that catches RuntimeError keeps working.
    """


def _as_real(name: str, value: object) -> float:
    # numbers.Real covers Python and NumPy scalars; bool is a Real too, but a
    # flag passed as a number is a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {value!r}")
    return float(value)


def _check_lr(lr: object, read_tensor: bool) -> None:
    if isinstance(lr, Tensor):
        if lr.numel() != 1:
            raise ValueError(
                f"lr must be a float or a 1-element Tensor, got a Tensor of shape "
                f"{tuple(lr.shape)}"
            )
        if not read_tensor:
            return
        value = lr.item()
    else:
        value = _as_real("lr", lr)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"lr must be non-negative and finite, got {value!r}")


def _check_betas(betas: object, read_tensor: bool) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    are_tensors = [isinstance(beta, Tensor) for beta in betas]
    if are_tensors[0] != are_tensors[1]:
        raise ValueError(
            f"betas must be two floats or two 1-element Tensors, got {betas!r}"
        )
    for i, beta in enumerate(betas):
        if isinstance(beta, Tensor):
            if beta.numel() != 1:
                raise ValueError(
                    f"betas[{i}] must be a 1-element Tensor, got shape "
                    f"{tuple(beta.shape)}"
                )
            if not read_tensor:
                continue
            value = beta.item()
        elif isinstance(beta, float):
            value = beta
        else:
            # torch.optim.Adam needs Python floats here, and rejects an int with
            # a ValueError, which this keeps.
            raise ValueError(f"betas[{i}] must be a float, got {beta!r}")
        if not 0.0 <= value < 1.0:
            raise ValueError(f"betas[{i}] must be in [0, 1), got {value!r}")


def _check_non_negative(name: str, value: object) -> None:
    number = _as_real(name, value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be non-negative and finite, got {value!r}")


def check_adam_arguments(
    lr: object, betas: object, eps: object, weight_decay: object
) -> None:
    """Raise for an Adam hyperparameter that torch.optim.Adam would accept wrongly.

    torch.optim.Adam rejects negative values but accepts NaN and infinities,
    which make every parameter NaN or infinite at the first step.
    """
    _check_lr(lr, read_tensor=True)
    _check_betas(betas, read_tensor=True)
    _check_non_negative("eps", eps)
    _check_non_negative("weight_decay", weight_decay)


def check_scale(value: object) -> float | None:
    if value is None:
        return None
    return check_positive_finite("scale", value)


def check_group_keys(param_group: Mapping[Any, Any]) -> None:
    """Raise for a group key that is a likely misspelling of a known key."""
    for key in param_group:
        if not isinstance(key, str) or key in _SUGGESTED_KEYS.values():
            continue
        right = _SUGGESTED_KEYS.get(_normalize_key(key))
        if right is not None:
            raise ValueError(
                f"unknown param group key {key!r}; did you mean {right!r}?"
            )


def check_group_values(group: dict[str, Any], read_tensors: bool = True) -> None:
    """Check the hyperparameters and constants a group sets, in place.

    Valid constants are stored back as Python floats, so that a NumPy scalar
    does not reach the state dict. With ``read_tensors=False``, a Tensor lr or
    beta is checked for its size only, because reading its value would wait
    for the device.
    """
    if "lr" in group:
        _check_lr(group["lr"], read_tensors)
    if "betas" in group:
        _check_betas(group["betas"], read_tensors)
    for key in ("eps", "weight_decay"):
        if key in group:
            _check_non_negative(key, group[key])
    for key in ("gain", "lr_mul"):
        if key in group:
            group[key] = check_positive_finite(key, group[key])
    if "scale" in group:
        group["scale"] = check_scale(group["scale"])


def check_step_tensors(
    group: Mapping[str, Any], state: Mapping[Tensor, Any] | None = None
) -> None:
    """Raise for a parameter or gradient that the group's Adam kernel would reject.

    torch.optim.Adam finds these while it initializes a group's state, after the
    groups before it have already stepped, so the check runs for all groups first.
    As in torch, the fused kernel's dtype and device are checked only for
    parameters that have no entry in ``state`` yet.
    """
    fused = group["fused"]
    capturable = group["capturable"]
    differentiable = group["differentiable"]
    _check_step_flags(group)
    fused_devices = _get_fused_kernels_supported_devices() if fused else []
    capturable_devices = _get_capturable_supported_devices() if capturable else []
    # Messages are built only on failure, because this loop runs at every step.
    for i, p in enumerate(group["params"]):
        grad = p.grad
        if grad is None:
            continue
        if grad.layout is not torch.strided:
            raise UnsupportedTensorError(
                f"{_describe(i, p)} has a {grad.layout} gradient, but Adam needs "
                "dense gradients; use torch.optim.SparseAdam, or a dense embedding "
                "(sparse=False)"
            )
        if (
            fused
            and (state is None or p not in state)
            and not (p.device.type in fused_devices and torch.is_floating_point(p))
        ):
            raise UnsupportedTensorError(
                f"fused=True supports real floating point parameters on "
                f"{fused_devices}, but {_describe(i, p)} is {p.dtype} on "
                f"{p.device.type}; pass fused=False"
            )
        if capturable and p.device.type not in capturable_devices:
            raise UnsupportedTensorError(
                f"capturable=True supports parameters on {capturable_devices}, but "
                f"{_describe(i, p)} is on {p.device.type}; pass capturable=False"
            )
        if differentiable and p.is_leaf and p.requires_grad:
            raise UnsupportedTensorError(
                f"differentiable=True updates parameters out of place in autograd, "
                f"but {_describe(i, p)} is a leaf that requires grad; pass "
                "differentiable=False, or optimize a non-leaf copy"
            )


def _check_step_flags(group: Mapping[str, Any]) -> None:
    # torch.optim.Adam's constructor rejects these combinations, but a group
    # changed or added later reaches adam(), which raises after earlier groups
    # have stepped. The fused path ignores foreach.
    if group["fused"]:
        if group["differentiable"]:
            raise UnsupportedTensorError(
                "fused=True does not support differentiable=True; pass fused=False"
            )
        return
    if not group["foreach"]:
        return
    if group["differentiable"]:
        raise UnsupportedTensorError(
            "foreach=True does not support differentiable=True; pass foreach=False"
        )
    if group["capturable"]:
        return
    beta1, beta2 = group["betas"]
    for name, value in (("lr", group["lr"]), ("betas[0]", beta1), ("betas[1]", beta2)):
        if isinstance(value, Tensor):
            raise UnsupportedTensorError(
                f"{name} as a Tensor needs capturable=True when foreach=True; pass "
                "foreach=False, capturable=True or a float"
            )


def _describe(i: int, p: Tensor) -> str:
    return f"parameter {i} of shape {tuple(p.shape)}"


def _check_step_value(where: str, step: object) -> None:
    if isinstance(step, Tensor):
        if step.numel() != 1 or step.is_complex():
            raise ValueError(
                f"{where}['step'] must be a 1-element Tensor, got {step!r}"
            )
        value = step.item()
    else:
        value = _as_real(f"{where}['step']", step)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{where}['step'] must be non-negative and finite, got {value}"
        )


def _check_moment(where: str, key: str, moment: object, param: Tensor) -> None:
    if not isinstance(moment, Tensor):
        raise TypeError(f"{where}[{key!r}] must be a Tensor, got {type(moment)}")
    if moment.shape != param.shape:
        raise ValueError(
            f"{where}[{key!r}] has shape {tuple(moment.shape)}, but the parameter "
            f"has shape {tuple(param.shape)}; the checkpoint belongs to another model"
        )
    # Loading casts a moment to a floating point parameter's dtype. An integer or
    # complex moment would load without an error, but with a wrong value.
    if param.is_floating_point():
        compatible = moment.is_floating_point()
    else:
        compatible = moment.dtype == param.dtype
    if not compatible:
        raise TypeError(
            f"{where}[{key!r}] has dtype {moment.dtype}, which cannot hold the "
            f"moments of a {param.dtype} parameter"
        )


def _check_param_state(
    where: str, entry: object, param: Tensor, saved_group: Mapping[str, Any]
) -> None:
    if not isinstance(entry, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(entry)}")
    if not entry:
        return
    keys = ["step", "exp_avg", "exp_avg_sq"]
    if saved_group.get("amsgrad", False):
        keys.append("max_exp_avg_sq")
    missing = [key for key in keys if key not in entry]
    if missing:
        raise ValueError(
            f"{where} is missing {', '.join(map(repr, missing))}; the checkpoint "
            "is truncated or was not written by Adam"
        )
    _check_step_value(where, entry["step"])
    for key in keys[1:]:
        _check_moment(where, key, entry[key], param)


def _saved_groups(
    optimizer: Optimizer, state_dict: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    saved_groups = state_dict["param_groups"]
    if not isinstance(saved_groups, (list, tuple)):
        raise TypeError(
            f"state_dict['param_groups'] must be a list, got {type(saved_groups)}"
        )
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError(
            f"state_dict has {len(saved_groups)} param groups, but the optimizer "
            f"has {len(optimizer.param_groups)}"
        )
    for g, (saved, group) in enumerate(
        zip(saved_groups, optimizer.param_groups, strict=True)
    ):
        if not isinstance(saved, dict):
            raise TypeError(
                f"param group {g} of state_dict must be a dict, got {saved!r}"
            )
        if not isinstance(saved.get("params"), (list, tuple)):
            raise ValueError(f"param group {g} of state_dict has no 'params' list")
        if len(saved["params"]) != len(group["params"]):
            raise ValueError(
                f"param group {g} of state_dict has {len(saved['params'])} "
                f"parameters, but the optimizer's group {g} has "
                f"{len(group['params'])}"
            )
        check_group_keys(saved)
        # Checked on a copy: the state dict is the caller's, and an error must
        # leave it as it was.
        check_group_values(dict(saved))
    return list(saved_groups)


def check_state_dict(optimizer: Optimizer, state_dict: object) -> None:
    """Raise if ``state_dict`` cannot be loaded into ``optimizer`` as it is.

    Checks the structure torch.optim.Optimizer.load_state_dict relies on, the
    group values, and each parameter's state against the parameter's shape and
    dtype. It reads ``state_dict`` without changing it.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(
            f"state_dict must be a dict from optimizer.state_dict(), got "
            f"{type(state_dict)}"
        )
    missing = [key for key in ("state", "param_groups") if key not in state_dict]
    if missing:
        raise ValueError(
            f"state_dict is missing {', '.join(map(repr, missing))}; pass the dict "
            "returned by optimizer.state_dict()"
        )
    saved_groups = _saved_groups(optimizer, state_dict)
    state = state_dict["state"]
    if not isinstance(state, Mapping):
        raise TypeError(f"state_dict['state'] must be a dict, got {type(state)}")

    params: dict[Any, tuple[Tensor, Mapping[str, Any]]] = {}
    for saved, group in zip(saved_groups, optimizer.param_groups, strict=True):
        for saved_id, param in zip(saved["params"], group["params"], strict=True):
            if saved_id in params:
                raise ValueError(
                    f"state_dict lists parameter id {saved_id!r} more than once"
                )
            params[saved_id] = (param, saved)

    for saved_id, entry in state.items():
        if saved_id not in params:
            raise ValueError(
                f"state_dict['state'] has an entry for parameter id {saved_id!r}, "
                "which no param group of state_dict lists"
            )
        param, saved = params[saved_id]
        _check_param_state(f"state_dict['state'][{saved_id!r}]", entry, param, saved)
