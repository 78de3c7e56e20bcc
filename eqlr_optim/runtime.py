"""The runtime formulation: layers that store v and multiply by c in every pass.

This is ProGAN's equalized learning rate as GAN codebases write it, built from
plain modules with :mod:`torch.nn.utils.parametrize`. It serves as the reference
that :class:`~eqlr_optim.EqualizedAdam` is tested against, and converts weights
between the two coordinates: ``w = c * v`` (effective) and ``v`` (stored).
"""

import copy
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .scales import DEFAULT_GAIN, check_positive_finite, equalized_scale

__all__ = [
    "RuntimeScale",
    "effective_weight",
    "remove_runtime_scaling",
    "runtime_parameters",
    "runtime_scaled",
    "stored_parameter",
]


class RuntimeScale(nn.Module):
    """Parametrization ``w = scale * v``; assigning ``w`` stores ``v = w / scale``."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = check_positive_finite("scale", scale)

    def forward(self, stored: Tensor) -> Tensor:
        return stored * self.scale

    def right_inverse(self, effective: Tensor) -> Tensor:
        return effective / self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}"


def _copy(model: nn.Module) -> nn.Module:
    """Deep-copy ``model`` so that changing the copy's parametrizations spares it.

    A deep copy of a parametrized module shares the class that
    torch.nn.utils.parametrize generated for the original, and registering or
    removing a parametrization adds or deletes a property on that class. Each
    parametrized module of the copy therefore gets a class of its own.
    """
    duplicate = copy.deepcopy(model)
    for module in duplicate.modules():
        if parametrize.is_parametrized(module):
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
    return duplicate


def _runtime_scalings(
    module: nn.Module, name: str, full_name: str
) -> list[RuntimeScale] | None:
    """Return the RuntimeScale parametrizations of a parametrized tensor.

    Returns None for a plain parameter, and raises for a tensor with another
    parametrization, whose forward pass does not use ``w = c * v``.
    """
    if not parametrize.is_parametrized(module, name):
        return None
    chain = list(module.parametrizations[name])  # type: ignore[index]
    scalings = [p for p in chain if isinstance(p, RuntimeScale)]
    if len(scalings) != len(chain):
        others = [type(p).__name__ for p in chain if not isinstance(p, RuntimeScale)]
        raise ValueError(
            f"{full_name} has the parametrization "
            f"{', '.join(others)}, so its forward pass does not use w = c * v; "
            "runtime scaling supports plain parameters only"
        )
    return scalings


def runtime_scaled(
    model: nn.Module,
    *,
    gain: float = DEFAULT_GAIN,
    lr_mul: float = 1.0,
    scale: float | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Return the runtime-scaled twin of a plain model, with the same effective weights.

    Every parameter that is not already scaled gets the constant c of
    :func:`~eqlr_optim.scales.equalized_scale` and stores ``v = w / c``, so the
    twin computes the same function as ``model``. Call it on a submodule first
    (with ``inplace=True`` on a copy) to give that part other constants, as a
    StyleGAN mapping network with ``lr_mul=0.01`` needs. A tensor with another
    parametrization (spectral or weight normalization) raises ValueError, and
    then ``model`` is left unchanged.
    """
    gain = check_positive_finite("gain", gain)
    lr_mul = check_positive_finite("lr_mul", lr_mul)
    if scale is not None:
        scale = check_positive_finite("scale", scale)

    # Every constant is computed before any module changes.
    plan: list[tuple[nn.Module, str, float]] = []
    for module_name, module in model.named_modules():
        if isinstance(module, parametrize.ParametrizationList):
            continue
        names = list(module._parameters)
        if parametrize.is_parametrized(module):
            names += list(module.parametrizations)
        for name in names:
            full_name = f"{module_name}.{name}" if module_name else name
            if _runtime_scalings(module, name, full_name) is not None:
                continue
            p = module._parameters[name]
            if p is None:
                continue
            c = equalized_scale(p.shape, gain, lr_mul, scale, full_name)
            plan.append((module, full_name, c))

    twin = model if inplace else _copy(model)
    for _, full_name, c in plan:
        module_name, _, name = full_name.rpartition(".")
        parametrize.register_parametrization(
            twin.get_submodule(module_name), name, RuntimeScale(c)
        )
    return twin


def remove_runtime_scaling(twin: nn.Module, inplace: bool = False) -> nn.Module:
    """Return a plain model whose weights are the twin's effective weights ``c * v``."""
    # Checked before any module changes, so a refused twin stays as it was.
    for module_name, module in twin.named_modules():
        if parametrize.is_parametrized(module):
            for name in module.parametrizations:
                full_name = f"{module_name}.{name}" if module_name else name
                _runtime_scalings(module, name, full_name)

    plain = twin if inplace else _copy(twin)
    for module in list(plain.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):  # type: ignore[arg-type]
                parametrize.remove_parametrizations(
                    module, name, leave_parametrized=True
                )
    return plain


def stored_parameter(twin: nn.Module, name: str) -> tuple[nn.Parameter, float]:
    """Return the stored ``v`` and the constant c behind the twin's parameter ``name``.

    ``name`` is the parameter's name in the plain model, such as ``"0.weight"``.
    """
    module_name, _, attr = name.rpartition(".")
    module = twin.get_submodule(module_name)
    if not parametrize.is_parametrized(module, attr):
        raise ValueError(f"{name!r} is not runtime-scaled in this model")
    plist = module.parametrizations[attr]  # type: ignore[index]
    (scaling,) = [p for p in plist if isinstance(p, RuntimeScale)]
    original: nn.Parameter = plist.original  # type: ignore[union-attr]
    return original, scaling.scale


def runtime_parameters(
    plain: nn.Module, twin: nn.Module
) -> Iterator[tuple[str, nn.Parameter, nn.Parameter, float]]:
    """Yield ``(name, w, v, c)`` for each parameter of ``plain`` and of its twin."""
    for name, w in plain.named_parameters():
        v, c = stored_parameter(twin, name)
        yield name, w, v, c


@torch.no_grad()
def effective_weight(twin: nn.Module, name: str) -> Tensor:
    """Return the twin's effective weight ``c * v``, as its forward pass computes it."""
    v, c = stored_parameter(twin, name)
    return v * c
