"""ProGAN's equalized learning rate, applied by the optimizer to plain layers."""

from .adam import EqualizedAdam, adam_hyperparameters
from .convert import load_runtime_adam_state
from .init import he_init_
from .runtime import remove_runtime_scaling, runtime_parameters, runtime_scaled
from .scales import equalized_scale, fan_in

__all__ = [
    "EqualizedAdam",
    "adam_hyperparameters",
    "equalized_scale",
    "fan_in",
    "he_init_",
    "load_runtime_adam_state",
    "remove_runtime_scaling",
    "runtime_parameters",
    "runtime_scaled",
]

__version__ = "0.1.0"
