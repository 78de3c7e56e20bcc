"""The equalized learning rate constant c of each tensor, and checks of its inputs.

A tensor of two or more dimensions stores ``v`` and acts as ``w = c * v`` with
``c = gain * lr_mul / sqrt(fan_in)``, where ``fan_in`` is the product of all but
the first dimension (``in_features`` for ``nn.Linear``,
``in_channels / groups * kernel_size`` for ``nn.Conv2d``). Biases and other
tensors of fewer dimensions use ``c = lr_mul``. An explicit ``scale`` replaces
both rules.
"""

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "DEFAULT_GAIN",
    "check_positive_finite",
    "equalized_scale",
    "fan_in",
    "zero_fan_in_error",
]

DEFAULT_GAIN = math.sqrt(2.0)
"""He's gain for ReLU; ProGAN uses it for every layer."""


def check_positive_finite(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a positive finite number.

    Python and NumPy numbers are accepted. A Tensor is rejected, because the
    constant is used as a Python float and reading a Tensor waits for its device.
    """
    if isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a positive finite float, got a Tensor {value!r}; "
            f"pass {name}.item()"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive finite float, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return number


def fan_in(shape: Sequence[int] | torch.Size) -> int:
    """Return the number of inputs of one output unit, the product of ``shape[1:]``."""
    return math.prod(shape[1:])


def equalized_scale(
    shape: Sequence[int] | torch.Size,
    gain: float,
    lr_mul: float,
    scale: float | None = None,
    name: str = "tensor",
) -> float:
    """Return the runtime constant c of a tensor of the given shape.

    ``name`` only labels the error raised for a tensor with no inputs.
    """
    if scale is not None:
        return scale
    if len(shape) < 2:
        return lr_mul
    n = fan_in(shape)
    if n == 0:
        raise zero_fan_in_error(name, shape)
    return gain * lr_mul / math.sqrt(n)


def zero_fan_in_error(name: str, shape: Sequence[int] | torch.Size) -> ValueError:
    """Return the error for a tensor whose constant is undefined."""
    return ValueError(
        f"{name} has shape {tuple(shape)}, so fan_in is 0 and the constant "
        "gain * lr_mul / sqrt(fan_in) is undefined; give its group an explicit "
        "'scale'"
    )
