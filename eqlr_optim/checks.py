"""Checks of arguments, group keys and checkpoints, run before any state changes."""

import math
from typing import Any

from torch import Tensor
from torch.optim import Optimizer

from .scales import check_positive_finite

__all__ = [
    "CONSTANT_KEYS",
    "NEAR_MISS_KEYS",
    "check_adam_arguments",
    "check_group_keys",
    "check_scale",
    "check_state_dict",
]

CONSTANT_KEYS = ("gain", "lr_mul", "scale")
"""Group keys that set the constant c of each tensor."""

NEAR_MISS_KEYS = {
    "lr_mult": "lr_mul",
    "lrmul": "lr_mul",
    "lr_multiplier": "lr_mul",
    "lr_multiplicator": "lr_mul",
    "lr_scale": "lr_mul",
    "lr_mul_": "lr_mul",
    "learning_rate_multiplier": "lr_mul",
    "scales": "scale",
    "weight_scale": "scale",
    "wscale": "scale",
    "gains": "gain",
    "weight_gain": "gain",
    "init_gain": "gain",
}
"""Misspelt group keys that torch would accept silently, mapped to the right key."""


def check_adam_arguments(lr: float | Tensor, eps: float, weight_decay: float) -> None:
    # torch.optim.Adam rejects negative values, but accepts infinities.
    lr_value = lr.item() if isinstance(lr, Tensor) and lr.numel() == 1 else lr
    if isinstance(lr_value, (int, float)) and not math.isfinite(lr_value):
        raise ValueError(f"lr must be finite, got {lr_value!r}")
    if not math.isfinite(eps):
        raise ValueError(f"eps must be finite, got {eps!r}")
    if not math.isfinite(weight_decay):
        raise ValueError(f"weight_decay must be finite, got {weight_decay!r}")


def check_scale(value: object) -> float | None:
    if value is None:
        return None
    return check_positive_finite("scale", value)


def check_group_keys(param_group: dict[str, Any]) -> None:
    """Raise for a group key that is a likely misspelling of a constant key."""
    for key, right in NEAR_MISS_KEYS.items():
        if key in param_group:
            raise ValueError(
                f"unknown param group key {key!r}; did you mean {right!r}?"
            )


def check_state_dict(optimizer: Optimizer, state_dict: dict[str, Any]) -> None:
    """Raise if ``state_dict`` cannot be loaded into ``optimizer`` as it is."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict, got {type(state_dict)}")
