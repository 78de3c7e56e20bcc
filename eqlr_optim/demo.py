"""Train one small GAN three ways and compare them: ``python -m eqlr_optim.demo``.

The data are scikit-learn's bundled 8x8 handwritten digits (1,797 images,
nothing downloaded), scaled to [-1, 1]. The three runs start from the same
effective weights and see the same batches and latent vectors:

(a) runtime-scaled layers (``w = c * v``, Adam on ``v``), as ProGAN trains;
(b) plain He-initialized layers and :class:`~eqlr_optim.EqualizedAdam`;
(c) plain He-initialized layers and :class:`torch.optim.Adam`.

The runs step in lockstep, so after every step the demo records the losses,
``max |w_a - w_b|`` and ``max |w_b - w_c|`` over all parameters, and the
relative update ``|dw| / |w|`` (Frobenius norms, in w-coordinates) of every
weight. The plots and the report go to ``--out`` (default ``demo-output/``).
"""

import argparse
import copy
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .adam import EqualizedAdam
from .init import he_init_
from .runtime import runtime_parameters, runtime_scaled

__all__ = ["DemoConfig", "Run", "main", "run_demo"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}

INSTALL_HINT = (
    "the demo needs scikit-learn, matplotlib and tqdm; "
    "install them with: pip install 'eqlr-optim[demo]'"
)


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo: the GAN, its optimizers and the length of training."""

    steps: int = 3000
    seed: int = 0
    batch_size: int = 64
    dtype: str = "float64"
    latent_size: int = 32
    generator_widths: tuple[int, ...] = (128, 256)
    discriminator_widths: tuple[int, ...] = (256, 128)
    lr: float = 2e-3
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    negative_slope: float = 0.2
    out: str = "demo-output"


@dataclass
class Run:
    """One of the three trainings, with the series recorded at every step."""

    key: str
    title: str
    generator: nn.Module
    discriminator: nn.Module
    generator_optimizer: torch.optim.Optimizer
    discriminator_optimizer: torch.optim.Optimizer
    effective_weights: Callable[[], dict[str, Tensor]]
    d_losses: list[float] = field(default_factory=list)
    g_losses: list[float] = field(default_factory=list)
    update_sizes: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0


def load_digits_tensor(dtype: torch.dtype) -> Tensor:
    """Return the 1,797 bundled 8x8 digits as rows of 64 pixels in [-1, 1]."""
    from sklearn.datasets import load_digits

    pixels = torch.as_tensor(load_digits().data, dtype=dtype)
    # Pixel values are integers from 0 to 16.
    return pixels / 8.0 - 1.0


def mlp(
    sizes: Sequence[int], negative_slope: float, dtype: torch.dtype
) -> nn.Sequential:
    """Build Linear layers of the given sizes with leaky ReLU between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i > 0:
            layers.append(nn.LeakyReLU(negative_slope))
        layers.append(nn.Linear(n_in, n_out, dtype=dtype))
    return nn.Sequential(*layers)


def build_plain_gan(config: DemoConfig) -> tuple[nn.Sequential, nn.Sequential]:
    """Build the He-initialized generator and discriminator from ``config.seed``."""
    dtype = DTYPES[config.dtype]
    rng = torch.Generator().manual_seed(config.seed)
    generator = mlp(
        (config.latent_size, *config.generator_widths, 64), config.negative_slope, dtype
    )
    discriminator = mlp(
        (64, *config.discriminator_widths, 1), config.negative_slope, dtype
    )
    he_init_(generator, generator=rng)
    he_init_(discriminator, generator=rng)
    return generator, discriminator


def named_gan_parameters(
    generator: nn.Module, discriminator: nn.Module
) -> Iterator[tuple[str, Tensor]]:
    """Yield every parameter of both networks, named ``G.<name>`` or ``D.<name>``."""
    for prefix, net in (("G", generator), ("D", discriminator)):
        for name, p in net.named_parameters():
            yield f"{prefix}.{name}", p


def make_runs(config: DemoConfig) -> list[Run]:
    """Build runs (a), (b) and (c) from one set of He-initialized weights."""
    generator, discriminator = build_plain_gan(config)
    hyperparameters: dict[str, Any] = {
        "lr": config.lr,
        "betas": config.betas,
        "eps": config.eps,
    }

    twin_g = runtime_scaled(generator)
    twin_d = runtime_scaled(discriminator)

    def twin_weights() -> dict[str, Tensor]:
        # v * c is the product that RuntimeScale.forward computes, so these are
        # exactly the weights the forward pass uses.
        weights = {}
        for prefix, plain, twin in (
            ("G", generator, twin_g),
            ("D", discriminator, twin_d),
        ):
            for name, _, v, c in runtime_parameters(plain, twin):
                weights[f"{prefix}.{name}"] = v.detach() * c
        return weights

    runs = [
        Run(
            "a",
            "(a) runtime-scaled + Adam",
            twin_g,
            twin_d,
            torch.optim.Adam(twin_g.parameters(), **hyperparameters),
            torch.optim.Adam(twin_d.parameters(), **hyperparameters),
            twin_weights,
        )
    ]
    for key, title, optimizer_class in (
        ("b", "(b) plain + EqualizedAdam", EqualizedAdam),
        ("c", "(c) plain + Adam", torch.optim.Adam),
    ):
        g, d = copy.deepcopy(generator), copy.deepcopy(discriminator)

        def plain_weights(g: nn.Module = g, d: nn.Module = d) -> dict[str, Tensor]:
            return {name: p.detach().clone() for name, p in named_gan_parameters(g, d)}

        runs.append(
            Run(
                key,
                title,
                g,
                d,
                optimizer_class(g.parameters(), **hyperparameters),
                optimizer_class(d.parameters(), **hyperparameters),
                plain_weights,
            )
        )
    return runs


def train_step(run: Run, real: Tensor, z_d: Tensor, z_g: Tensor) -> None:
    """Take one discriminator step and one generator step with the logistic loss.

    The generator loss is the non-saturating ``softplus(-D(G(z)))``.
    """
    fake = run.generator(z_d).detach()
    d_loss = F.softplus(run.discriminator(fake)).mean()
    d_loss = d_loss + F.softplus(-run.discriminator(real)).mean()
    run.discriminator_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    run.discriminator_optimizer.step()

    g_loss = F.softplus(-run.discriminator(run.generator(z_g))).mean()
    run.generator_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    run.generator_optimizer.step()

    run.d_losses.append(d_loss.item())
    run.g_losses.append(g_loss.item())


def max_abs_gap(first: dict[str, Tensor], second: dict[str, Tensor]) -> float:
    """Return the largest ``|first - second|`` over all entries of all tensors."""
    return max((first[name] - second[name]).abs().max().item() for name in first)


def batches(
    data: Tensor, config: DemoConfig
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Yield ``(real, z_d, z_g)`` for each step: epochs of shuffled digits and noise."""
    rng = torch.Generator().manual_seed(config.seed + 1)
    dtype = data.dtype
    order = torch.empty(0, dtype=torch.long)
    while True:
        if len(order) < config.batch_size:
            order = torch.randperm(len(data), generator=rng)
        index, order = order[: config.batch_size], order[config.batch_size :]
        shape = (config.batch_size, config.latent_size)
        z_d = torch.randn(shape, generator=rng, dtype=dtype)
        z_g = torch.randn(shape, generator=rng, dtype=dtype)
        yield data[index], z_d, z_g


def run_demo(config: DemoConfig, progress: bool = True) -> dict[str, Any]:
    """Train the three runs in lockstep and return every recorded series."""
    from tqdm import tqdm

    data = load_digits_tensor(DTYPES[config.dtype])
    runs = make_runs(config)
    run_b = runs[1]
    weights = {run.key: run.effective_weights() for run in runs}
    weight_names = [name for name in weights["b"] if name.endswith("weight")]
    for run in runs:
        run.update_sizes = {name: [] for name in weight_names}

    gap_ab = [max_abs_gap(weights["a"], weights["b"])]
    gap_bc = [max_abs_gap(weights["b"], weights["c"])]
    max_abs_weight_b = [max(w.abs().max().item() for w in weights["b"].values())]

    stream = batches(data, config)
    bar = tqdm(range(config.steps), desc="training (a), (b), (c)", disable=not progress)
    for _ in bar:
        real, z_d, z_g = next(stream)
        for run in runs:
            start = time.perf_counter()
            train_step(run, real, z_d, z_g)
            run.train_seconds += time.perf_counter() - start
            new = run.effective_weights()
            for name in weight_names:
                old = weights[run.key][name]
                size = torch.linalg.norm(new[name] - old) / torch.linalg.norm(old)
                run.update_sizes[name].append(size.item())
            weights[run.key] = new
        gap_ab.append(max_abs_gap(weights["a"], weights["b"]))
        gap_bc.append(max_abs_gap(weights["b"], weights["c"]))
        max_abs_weight_b.append(
            max(w.abs().max().item() for w in weights["b"].values())
        )
        bar.set_postfix(
            gap_ab=f"{gap_ab[-1]:.1e}",
            d_loss=f"{run_b.d_losses[-1]:.3f}",
            refresh=False,
        )
    bar.close()

    return {
        "config": config,
        "runs": runs,
        "data": data,
        "weight_names": weight_names,
        "fan_in": {name: weights["b"][name].shape[1] for name in weight_names},
        "gap_ab": gap_ab,
        "gap_bc": gap_bc,
        "max_abs_weight_b": max_abs_weight_b,
    }


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser, with defaults from :class:`DemoConfig`."""
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(
        prog="python -m eqlr_optim.demo",
        description=(
            "Train a small GAN on scikit-learn's 8x8 digits three ways (runtime-scaled "
            "layers + Adam, plain layers + EqualizedAdam, plain layers + Adam) and "
            "write plots and a report comparing them."
        ),
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=defaults.steps,
        help="training steps of each run (default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the initial weights, batches and noise (default %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="images per batch (default %(default)s)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=defaults.lr,
        help="Adam learning rate of all three runs (default %(default)s)",
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=defaults.dtype,
        help="dtype of the models and data (default %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads during training (default %(default)s)",
    )
    parser.add_argument(
        "--out",
        default=defaults.out,
        help="folder for the plots and report (default %(default)s)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> tuple[DemoConfig, int, bool]:
    """Read the command line into a config, a thread count and a progress switch."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if not args.lr > 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    config = DemoConfig(
        steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        dtype=args.dtype,
        lr=args.lr,
        out=args.out,
    )
    return config, args.threads, not args.no_progress


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo from the command line and return the exit status."""
    config, threads, progress = parse_args(argv)
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError as error:
        print(f"{INSTALL_HINT} ({error})", file=sys.stderr)
        return 1
    from .demo_report import write_outputs

    start = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = run_demo(config, progress)
    finally:
        torch.set_num_threads(previous_threads)
    results["train_wall_seconds"] = time.perf_counter() - start
    results["threads"] = threads
    report = write_outputs(results, Path(config.out), start)
    print(report["verdict"])
    print(f"wrote {config.out}/report.md, report.json and 4 plots", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
