"""Small GAN networks in three formulations of the equalized learning rate.

``plain`` layers store the effective weight ``w`` and train with EqualizedAdam.
``parametrize`` is :func:`eqlr_optim.runtime_scaled`, which multiplies by c
through :mod:`torch.nn.utils.parametrize`. ``hand-written`` layers store ``v``
and multiply in ``forward`` as ProGAN and StyleGAN code does, which is the
fastest runtime formulation and so the fair baseline.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eqlr_optim import EqualizedAdam, he_init_, runtime_scaled
from eqlr_optim.scales import DEFAULT_GAIN

__all__ = [
    "FORMULATIONS",
    "MODELS",
    "ModelSizes",
    "RuntimeConv2d",
    "RuntimeLinear",
    "Trainer",
    "build_networks",
    "make_trainer",
]

FORMULATIONS = ("plain + EqualizedAdam", "parametrize + Adam", "hand-written + Adam")
MODELS = ("mapping", "synthesis", "gan")

MAPPING_LR_MUL = 0.01
"""StyleGAN's learning-rate multiplier for its mapping network."""


@dataclass(frozen=True)
class ModelSizes:
    """Widths and batch sizes of the three networks; the defaults are the full run."""

    mapping_width: int = 512
    mapping_batch: int = 64
    synthesis_channels: int = 64
    synthesis_resolution: int = 16
    synthesis_batch: int = 8
    gan_hidden: int = 256
    gan_pixels: int = 64
    gan_batch: int = 64


class RuntimeLinear(nn.Module):
    """Linear layer that stores ``v`` and computes with ``w = scale * v``."""

    def __init__(
        self, in_features: int, out_features: int, lr_mul: float = 1.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = DEFAULT_GAIN * lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        # A multiplier of 1 is skipped, as StyleGAN2's layers skip it.
        bias = self.bias if self.lr_mul == 1.0 else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.scale, bias)


class RuntimeConv2d(nn.Module):
    """Convolution with odd square kernel and same padding, storing ``v``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = DEFAULT_GAIN / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def _plain_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Module:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def _mapping(linear: Callable[[int, int], nn.Module], width: int) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(8):
        layers += [linear(width, width), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


def _synthesis(conv: Callable[[int, int, int], nn.Module], channels: int) -> nn.Module:
    half = max(1, channels // 2)
    return nn.Sequential(
        conv(channels, channels, 3),
        nn.LeakyReLU(0.2),
        conv(channels, channels, 3),
        nn.LeakyReLU(0.2),
        nn.Upsample(scale_factor=2.0, mode="nearest"),
        conv(channels, half, 3),
        nn.LeakyReLU(0.2),
        conv(half, half, 3),
        nn.LeakyReLU(0.2),
        conv(half, 3, 1),
    )


def _gan(
    linear: Callable[[int, int], nn.Module], hidden: int, pixels: int
) -> tuple[nn.Module, nn.Module]:
    generator = nn.Sequential(
        linear(pixels, hidden),
        nn.LeakyReLU(0.2),
        linear(hidden, hidden),
        nn.LeakyReLU(0.2),
        linear(hidden, pixels),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        linear(pixels, hidden),
        nn.LeakyReLU(0.2),
        linear(hidden, hidden),
        nn.LeakyReLU(0.2),
        linear(hidden, 1),
    )
    return generator, discriminator


@torch.no_grad()
def _copy_effective_weights(
    runtime: nn.Module, plain: nn.Module, lr_mul: float
) -> None:
    # Store v = w / c, so all three formulations compute the same function.
    layers = [
        m for m in runtime.modules() if isinstance(m, (RuntimeLinear, RuntimeConv2d))
    ]
    sources = [m for m in plain.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for layer, source in zip(layers, sources, strict=True):
        layer.weight.copy_(source.weight / layer.scale)
        layer.bias.copy_(source.bias / lr_mul)


@dataclass
class Trainer:
    """A training step and the optimizers it steps."""

    step: Callable[[], None]
    optimizers: list[torch.optim.Optimizer]

    def zero_grad(self) -> None:
        """Free every gradient, as ``step`` does first."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)


def build_networks(
    model: str, formulation: str, sizes: ModelSizes, generator: torch.Generator
) -> tuple[list[nn.Module], float]:
    """Return the networks of one model in one formulation, and their lr_mul.

    The same generator seed gives the same effective weights in every formulation.
    """
    lr_mul = MAPPING_LR_MUL if model == "mapping" else 1.0

    def plain_linear(i: int, o: int) -> nn.Module:
        return nn.Linear(i, o)

    def runtime_linear(i: int, o: int) -> nn.Module:
        return RuntimeLinear(i, o, lr_mul)

    if model == "mapping":
        plain = [_mapping(plain_linear, sizes.mapping_width)]
        runtime = [_mapping(runtime_linear, sizes.mapping_width)]
    elif model == "synthesis":
        plain = [_synthesis(_plain_conv, sizes.synthesis_channels)]
        runtime = [_synthesis(RuntimeConv2d, sizes.synthesis_channels)]
    elif model == "gan":
        plain = list(_gan(plain_linear, sizes.gan_hidden, sizes.gan_pixels))
        runtime = list(_gan(runtime_linear, sizes.gan_hidden, sizes.gan_pixels))
    else:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")

    for network in plain:
        he_init_(network, generator=generator)
    if formulation == "plain + EqualizedAdam":
        return plain, lr_mul
    if formulation == "parametrize + Adam":
        return [runtime_scaled(network, lr_mul=lr_mul) for network in plain], lr_mul
    if formulation == "hand-written + Adam":
        for network, source in zip(runtime, plain, strict=True):
            _copy_effective_weights(network, source, lr_mul)
        return runtime, lr_mul
    raise ValueError(
        f"unknown formulation {formulation!r}; expected one of {FORMULATIONS}"
    )


def _optimizer(
    network: nn.Module, formulation: str, lr_mul: float
) -> torch.optim.Optimizer:
    # Both use torch's default implementation for the device: the single-tensor
    # loop on the CPU, foreach on CUDA.
    if formulation == "plain + EqualizedAdam":
        return EqualizedAdam(
            network.parameters(), lr=2e-3, betas=(0.0, 0.99), lr_mul=lr_mul
        )
    return torch.optim.Adam(network.parameters(), lr=2e-3, betas=(0.0, 0.99))


def make_trainer(
    model: str, formulation: str, sizes: ModelSizes, device: str = "cpu", seed: int = 0
) -> Trainer:
    """Return a training step (zero_grad, forward, backward, step) of one model.

    ``mapping`` is StyleGAN's 8-layer mapping network with lr_mul 0.01.
    ``synthesis`` is a stack of 3x3 convolutions with one 2x upsampling. ``gan``
    is an MLP generator and discriminator on flattened images, and its step is
    one discriminator step and one generator step of the non-saturating loss.
    """
    generator = torch.Generator().manual_seed(seed)
    networks, lr_mul = build_networks(model, formulation, sizes, generator)
    networks = [network.to(device) for network in networks]
    optimizers = [_optimizer(network, formulation, lr_mul) for network in networks]

    if model == "gan":
        return _gan_trainer(networks, optimizers, sizes, device, generator)

    (network,) = networks
    (optimizer,) = optimizers
    if model == "mapping":
        shape = (sizes.mapping_batch, sizes.mapping_width)
    else:
        r = sizes.synthesis_resolution
        shape = (sizes.synthesis_batch, sizes.synthesis_channels, r, r)
    x = torch.randn(shape, generator=generator).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        network(x).square().mean().backward()
        optimizer.step()

    return Trainer(step, optimizers)


def _gan_trainer(
    networks: list[nn.Module],
    optimizers: list[torch.optim.Optimizer],
    sizes: ModelSizes,
    device: str,
    generator: torch.Generator,
) -> Trainer:
    g, d = networks
    g_opt, d_opt = optimizers
    batch = (sizes.gan_batch, sizes.gan_pixels)
    real = torch.rand(batch, generator=generator).mul(2).sub(1).to(device)
    z = torch.randn(batch, generator=generator).to(device)

    def step() -> None:
        d_opt.zero_grad(set_to_none=True)
        fake = g(z).detach()
        d_loss = F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()
        d_loss.backward()
        d_opt.step()

        g_opt.zero_grad(set_to_none=True)
        F.softplus(-d(g(z))).mean().backward()
        g_opt.step()

    return Trainer(step, optimizers)
