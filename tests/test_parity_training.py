"""EqualizedAdam in training loops: torch's config table, lr schedulers, GradScaler."""

from collections.abc import Callable
from typing import Any

import pytest
import torch
from helpers import (
    POWER_OF_TWO,
    UNIT,
    Constants,
    Pair,
    differences,
    loss_of,
    make_batches,
    make_model,
    make_pair,
    train_pair,
)
from test_parity_differentiable import differentiable_mismatches
from torch.optim import lr_scheduler

common_optimizers = pytest.importorskip(
    "torch.testing._internal.common_optimizers",
    reason="torch's optimizer test table needs the expecttest package",
)

STEPS = 6

ADAM_INFO = next(
    info for info in common_optimizers.optim_db if info.optim_cls is torch.optim.Adam
)
CPU_CONFIGS = common_optimizers._get_optim_inputs_including_global_cliquey_kwargs(
    "cpu", torch.float32, ADAM_INFO
)
CPU_DESCS = {config.desc for config in ADAM_INFO.optim_inputs_func("cpu")}
CUDA_ONLY_CONFIGS = [
    config
    for config in ADAM_INFO.optim_inputs_func("cuda")
    if config.desc not in CPU_DESCS
]


@pytest.mark.parametrize("config", CPU_CONFIGS, ids=lambda config: config.desc)
def test_torch_config_bitwise(config: Any) -> None:
    if config.kwargs["differentiable"]:
        # differentiable=True needs non-leaf parameters, as torch's own tests use.
        kwargs = {
            key: value
            for key, value in config.kwargs.items()
            if key not in ("differentiable", "fused")
        }
        assert differentiable_mismatches(UNIT, kwargs) == []
        return
    pair = make_pair(UNIT, config.kwargs)
    train_pair(pair, make_batches(STEPS))
    assert differences(pair) == []


@pytest.mark.parametrize("config", CUDA_ONLY_CONFIGS, ids=lambda config: config.desc)
def test_torch_config_cuda_only(config: Any) -> None:
    if not torch.cuda.is_available():
        pytest.skip("torch lists this Adam config for CUDA and XPU devices only")
    model = make_model().cuda()
    pair = make_pair(UNIT, config.kwargs, lambda: copy_to_cuda(model))
    train_pair(pair, [(x.cuda(), y.cuda()) for x, y in make_batches(STEPS)])
    assert differences(pair) == []


def copy_to_cuda(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).cuda()


SchedulerFactory = Callable[[torch.optim.Optimizer], Any]

SCHEDULERS: dict[str, SchedulerFactory] = {
    "LambdaLR": lambda opt: lr_scheduler.LambdaLR(opt, lambda t: 0.5**t),
    "MultiplicativeLR": lambda opt: lr_scheduler.MultiplicativeLR(opt, lambda t: 0.75),
    "StepLR": lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    "MultiStepLR": lambda opt: lr_scheduler.MultiStepLR(
        opt, milestones=[1, 3], gamma=0.25
    ),
    "ConstantLR": lambda opt: lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=3),
    "LinearLR": lambda opt: lr_scheduler.LinearLR(opt, start_factor=0.3, total_iters=4),
    "ExponentialLR": lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.7),
    "PolynomialLR": lambda opt: lr_scheduler.PolynomialLR(
        opt, total_iters=5, power=2.0
    ),
    "CosineAnnealingLR": lambda opt: lr_scheduler.CosineAnnealingLR(
        opt, T_max=4, eta_min=1e-3
    ),
    "CosineAnnealingWarmRestarts": lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=2, T_mult=2, eta_min=1e-4
    ),
    "CyclicLR": lambda opt: lr_scheduler.CyclicLR(
        opt,
        base_lr=1e-3,
        max_lr=1e-2,
        step_size_up=2,
        cycle_momentum=True,
        base_momentum=0.8,
        max_momentum=0.9,
    ),
    "OneCycleLR": lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=8),
    "ReduceLROnPlateau": lambda opt: lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=0, threshold=10.0, min_lr=2e-3
    ),
    "SequentialLR": lambda opt: lr_scheduler.SequentialLR(
        opt,
        schedulers=[
            lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2),
            lr_scheduler.ExponentialLR(opt, gamma=0.8),
        ],
        milestones=[2],
    ),
    "ChainedScheduler": lambda opt: lr_scheduler.ChainedScheduler(
        [
            lr_scheduler.ExponentialLR(opt, gamma=0.9),
            lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
        ]
    ),
}
"""One factory per scheduler of torch.optim.lr_scheduler."""


def _train_scheduled(
    pair: Pair, factory: SchedulerFactory, batches: list[Any]
) -> list[float]:
    """Train both sides with a scheduler each; return the plain side's lr."""
    lrs = []
    for model, optimizer in (
        (pair.plain, pair.optimizer),
        (pair.reference, pair.reference_optimizer),
    ):
        scheduler = factory(optimizer)
        for batch in batches:
            optimizer.zero_grad()
            loss = loss_of(model, batch)
            loss.backward()
            optimizer.step()
            if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                scheduler.step(loss.item())
            else:
                scheduler.step()
            if optimizer is pair.optimizer:
                lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("constants", [UNIT, POWER_OF_TWO], ids=["unit", "pow2"])
def test_scheduler_bitwise(name: str, constants: Constants) -> None:
    pair = make_pair(constants, {"lr": 0.01})
    lrs = _train_scheduled(pair, SCHEDULERS[name], make_batches(STEPS))
    assert len(set(lrs)) > 1
    assert differences(pair) == []


def test_scheduler_rewrites_betas() -> None:
    pair = make_pair(POWER_OF_TWO, {"lr": 0.01})
    _train_scheduled(pair, SCHEDULERS["OneCycleLR"], make_batches(2))
    assert pair.optimizer.param_groups[0]["betas"][0] != 0.9


def test_scheduler_control_unscheduled() -> None:
    """The reference without its scheduler must differ, so the checks can fail."""
    pair = make_pair(POWER_OF_TWO, {"lr": 0.01})
    batches = make_batches(STEPS)
    scheduler = SCHEDULERS["StepLR"](pair.optimizer)
    for batch in batches:
        pair.optimizer.zero_grad()
        loss_of(pair.plain, batch).backward()
        pair.optimizer.step()
        scheduler.step()
    for batch in batches:
        pair.reference_optimizer.zero_grad()
        loss_of(pair.reference, batch).backward()
        pair.reference_optimizer.step()
    assert differences(pair) != []


GRAD_SCALER_PATHS = {
    "single_tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}

INF_STEP = 2
"""The step whose gradient gets an inf, so GradScaler skips it."""


def _train_amp(pair: Pair, batches: list[Any], inject_inf: bool) -> list[float]:
    """Train both sides under float16 autocast and GradScaler; return the scales."""
    scales = []
    for model, optimizer in (
        (pair.plain, pair.optimizer),
        (pair.reference, pair.reference_optimizer),
    ):
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
        for step, batch in enumerate(batches):
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = loss_of(model, batch)
            scaler.scale(loss).backward()
            if inject_inf and step == INF_STEP:
                first = next(iter(model.parameters()))
                assert first.grad is not None
                first.grad.view(-1)[0] = float("inf")
            scaler.step(optimizer)
            scaler.update()
            if optimizer is pair.optimizer:
                scales.append(scaler.get_scale())
    return scales


@pytest.mark.parametrize("path", GRAD_SCALER_PATHS)
@pytest.mark.parametrize("constants", [UNIT, POWER_OF_TWO], ids=["unit", "pow2"])
def test_grad_scaler_skips_inf_step(path: str, constants: Constants) -> None:
    pair = make_pair(constants, {"lr": 0.01, **GRAD_SCALER_PATHS[path]})
    scales = _train_amp(pair, make_batches(STEPS), inject_inf=True)
    assert scales[INF_STEP] == scales[INF_STEP - 1] / 2
    for p in pair.plain.parameters():
        assert pair.optimizer.state[p]["step"].item() == STEPS - 1
    assert differences(pair) == []


@pytest.mark.parametrize("path", GRAD_SCALER_PATHS)
def test_grad_scaler_control_unskipped(path: str) -> None:
    """A run without the inf steps once more, so the step count check can fail."""
    pair = make_pair(POWER_OF_TWO, {"lr": 0.01, **GRAD_SCALER_PATHS[path]})
    _train_amp(pair, make_batches(STEPS), inject_inf=False)
    for p in pair.plain.parameters():
        assert pair.optimizer.state[p]["step"].item() == STEPS


def test_grad_scaler_float16_params_fused() -> None:
    """float16 parameters, so float16 gradients, reach the fused kernel.

    Only unit constants match bit for bit here. In float16 the squared gradients
    in exp_avg_sq fall below the smallest normal number (about 6e-5), and a
    model that stores v = w / c rounds them at other places than one that
    stores w.
    """
    pair = make_pair(
        UNIT,
        {"lr": 0.01, "fused": True, "eps": 1e-3},
        lambda: make_model(dtype=torch.float16),
    )
    batches = [(x.half(), y.half()) for x, y in make_batches(STEPS)]
    _train_amp(pair, batches, inject_inf=True)
    first = next(iter(pair.plain.parameters()))
    assert first.grad is not None
    assert first.grad.dtype == torch.float16
    assert pair.optimizer.state[first]["step"].item() == STEPS - 1
    assert differences(pair) == []


def test_grad_scaler_float16_unfused_raises_as_torch() -> None:
    """GradScaler rejects float16 gradients on an unfused path, for both."""
    pair = make_pair(
        POWER_OF_TWO,
        {"lr": 0.01, "foreach": False},
        lambda: make_model(dtype=torch.float16),
    )
    batches = [(x.half(), y.half()) for x, y in make_batches(1)]
    for model, optimizer in (
        (pair.plain, pair.optimizer),
        (pair.reference, pair.reference_optimizer),
    ):
        scaler = torch.amp.GradScaler("cpu")
        scaler.scale(loss_of(model, batches[0])).backward()
        with pytest.raises(ValueError, match="FP16 gradients"):
            scaler.step(optimizer)
