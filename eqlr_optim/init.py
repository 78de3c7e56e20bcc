"""He initialization, the start that matches the runtime formulation."""

import math

import torch
from torch import nn

from .scales import DEFAULT_GAIN, check_positive_finite, fan_in

__all__ = ["he_init_"]


@torch.no_grad()
def he_init_(
    module: nn.Module,
    gain: float = DEFAULT_GAIN,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Draw every weight of 2 or more dims from N(0, gain²/fan_in) and zero its bias.

    The runtime formulation draws ``v`` from N(0, 1/lr_mul²) and uses
    ``w = gain * lr_mul / sqrt(fan_in) * v``, which is the same distribution of
    ``w`` for every ``lr_mul``. Modules are visited recursively; a module whose
    ``weight`` has fewer than 2 dims (a norm layer) is left as it is.

    Returns ``module``, changed in place.
    """
    gain = check_positive_finite("gain", gain)
    for name, sub in module.named_modules():
        weight = getattr(sub, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
            continue
        n = fan_in(weight.shape)
        if n == 0:
            raise ValueError(
                f"{name or type(sub).__name__}.weight of shape {tuple(weight.shape)} "
                "has fan_in 0, so N(0, gain²/fan_in) is undefined"
            )
        weight.normal_(0.0, gain / math.sqrt(n), generator=generator)
        bias = getattr(sub, "bias", None)
        if isinstance(bias, torch.Tensor):
            bias.zero_()
    return module
