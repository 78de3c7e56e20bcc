"""Checks of the derivations in proofs/, symbolic with sympy and numeric with torch.

The symbolic checks run one optimizer step on the stored ``v`` and on ``w = c * v``
with substituted hyperparameters (see ``tests/symbolic.py``). Every correct
substitution has a wrong twin that the same checker must reject, so no check
passes by construction.
"""

import math
from collections.abc import Callable

import pytest
import sympy
import torch
from symbolic import CASES, radam_rho, substitution_mismatches

from eqlr_optim import adam_hyperparameters, equalized_scale, he_init_

C = sympy.Symbol("c", positive=True)


def scaled(**powers: int) -> Callable[[sympy.Expr, dict, dict], dict]:
    """Return the substitution that multiplies each named hyperparameter by c**power."""

    def substitute(c: sympy.Expr, hp: dict, taken: dict) -> dict:
        return {
            key: value * c ** powers[key] if key in powers else value
            for key, value in hp.items()
        }

    return substitute


def radam_by_branch(decoupled_power: int, unrectified_lr: int) -> Callable:
    """Return RAdam's substitution: Adam's on rectified steps, another one otherwise."""

    def substitute(c: sympy.Expr, hp: dict, taken: dict) -> dict:
        # The initial state reads no hyperparameter, so any branch will do there.
        if taken.get("rectified", 0) == 0:
            powers = {"lr": 1, "eps": -1, "weight_decay": decoupled_power}
        else:
            powers = {"lr": unrectified_lr, "weight_decay": -2}
        return scaled(**powers)(c, hp, taken)

    return substitute


ADAM = scaled(lr=1, eps=-1, weight_decay=-2)
ADAMW = scaled(lr=1, eps=-1, weight_decay=-1)

# (case, substitution, whether it is correct): every correct row has a wrong twin.
SUBSTITUTIONS = [
    ("adam", ADAM, True),
    ("adam", scaled(lr=1), False),
    ("adam amsgrad", ADAM, True),
    ("adam amsgrad", scaled(lr=1), False),
    ("tensorflow adam", ADAM, True),
    ("tensorflow adam", scaled(lr=1), False),
    ("adam maximize", ADAM, True),
    ("adam maximize", scaled(lr=1, eps=1), False),
    ("adam l2", ADAM, True),
    ("adam l2", scaled(lr=1, eps=-1, weight_decay=-1), False),
    ("adamw", ADAMW, True),
    ("adamw", scaled(lr=1, eps=-1, weight_decay=-2), False),
    ("sgd", scaled(lr=2, weight_decay=-2), True),
    ("sgd", scaled(lr=1, weight_decay=-2), False),
    ("sgd", scaled(lr=2, weight_decay=-1), False),
    ("sgd nesterov", scaled(lr=2, weight_decay=-2), True),
    ("sgd nesterov", scaled(lr=1, weight_decay=-2), False),
    ("rmsprop", ADAM, True),
    ("rmsprop", scaled(lr=1, weight_decay=-2), False),
    ("rmsprop centered momentum", ADAM, True),
    ("rmsprop centered momentum", scaled(lr=1), False),
    (
        "adagrad",
        scaled(lr=1, eps=-1, weight_decay=-2, initial_accumulator_value=-2),
        True,
    ),
    ("adagrad", scaled(lr=1, eps=-1, weight_decay=-2), False),
    ("adamax", ADAM, True),
    ("adamax", scaled(lr=1, weight_decay=-2), False),
    ("nadam", ADAM, True),
    ("nadam", scaled(lr=1, weight_decay=-2), False),
    ("nadamw", ADAMW, True),
    ("nadamw", ADAM, False),
    ("radam", radam_by_branch(-2, 2), True),
    ("radam", radam_by_branch(-2, 1), False),
    ("radam", ADAM, False),
    ("radam", scaled(lr=2, weight_decay=-2), False),
    ("radamw", radam_by_branch(-1, 2), True),
    ("radamw", radam_by_branch(-2, 2), False),
    ("radamw", ADAMW, False),
    ("rprop", scaled(lr=1, step_size_min=1, step_size_max=1), True),
    ("rprop", scaled(lr=1), False),
    ("adadelta", scaled(lr=2, eps=-2, weight_decay=-2), True),
    ("adadelta", ADAM, False),
    ("adadelta", scaled(lr=2, weight_decay=-2), False),
]


@pytest.mark.parametrize(
    ("case", "substitute", "correct"),
    SUBSTITUTIONS,
    ids=[
        f"{name}-{'correct' if ok else 'wrong'}{i}"
        for i, (name, _, ok) in enumerate(SUBSTITUTIONS)
    ],
)
def test_substitution_symbolic(case: str, substitute: Callable, correct: bool) -> None:
    mismatches = substitution_mismatches(CASES[case], substitute)
    if correct:
        assert mismatches == []
    else:
        assert mismatches != []


def test_every_case_has_correct_and_wrong_row() -> None:
    for name in CASES:
        outcomes = {correct for case, _, correct in SUBSTITUTIONS if case == name}
        assert outcomes == {True, False}, name


@pytest.mark.parametrize("decoupled", [False, True])
def test_package_adam_hyperparameters_symbolic(decoupled: bool) -> None:
    lr, eps, weight_decay = sympy.symbols("lr eps weight_decay", positive=True)
    substitute = ADAMW if decoupled else ADAM
    expected = substitute(C, {"lr": lr, "eps": eps, "weight_decay": weight_decay}, {})

    got = adam_hyperparameters(C, lr, eps, weight_decay, decoupled)

    assert sympy.simplify(got[0] - expected["lr"]) == 0
    assert sympy.simplify(got[1] - expected["eps"]) == 0
    assert sympy.simplify(got[2] - expected["weight_decay"]) == 0


@pytest.mark.parametrize("c", [1.0, 0.0625, math.sqrt(2 / 512), 0.000625])
def test_package_adam_hyperparameters_numeric(c: float) -> None:
    lr, eps, weight_decay = 2e-3, 1e-8, 0.1

    assert adam_hyperparameters(c, lr, eps, weight_decay, False) == pytest.approx(
        (lr * c, eps / c, weight_decay / c**2), rel=1e-15
    )
    assert adam_hyperparameters(c, lr, eps, weight_decay, True) == pytest.approx(
        (lr * c, eps / c, weight_decay / c), rel=1e-15
    )


# Numeric runs of torch's own optimizers: (class, kwargs on v, kwargs on w as a
# function of c, wrong kwargs on w).
def _adam_like(kwargs: dict, c: float, eps_power: int = -1, wd_power: int = -2) -> dict:
    out = dict(kwargs, lr=kwargs["lr"] * c, eps=kwargs["eps"] * c**eps_power)
    if "weight_decay" in out:
        out["weight_decay"] = kwargs["weight_decay"] * c**wd_power
    return out


TORCH_RUNS: list[tuple[str, type, dict, Callable, Callable]] = [
    (
        "adam",
        torch.optim.Adam,
        {"lr": 1e-2, "eps": 1e-3, "weight_decay": 0.1},
        _adam_like,
        lambda k, c: dict(k, lr=k["lr"] * c, weight_decay=k["weight_decay"] / c**2),
    ),
    (
        "adamw amsgrad",
        torch.optim.AdamW,
        {"lr": 1e-2, "eps": 1e-3, "weight_decay": 0.1, "amsgrad": True},
        lambda k, c: _adam_like(k, c, wd_power=-1),
        _adam_like,
    ),
    (
        "sgd nesterov",
        torch.optim.SGD,
        {"lr": 1e-2, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
        lambda k, c: dict(k, lr=k["lr"] * c**2, weight_decay=k["weight_decay"] / c**2),
        lambda k, c: dict(k, lr=k["lr"] * c, weight_decay=k["weight_decay"] / c**2),
    ),
    (
        "sgd dampening",
        torch.optim.SGD,
        {"lr": 1e-2, "momentum": 0.9, "dampening": 0.3, "maximize": True},
        lambda k, c: dict(k, lr=k["lr"] * c**2),
        lambda k, c: dict(k, lr=k["lr"] * c),
    ),
    (
        "rmsprop centered",
        torch.optim.RMSprop,
        {
            "lr": 1e-2,
            "eps": 1e-3,
            "centered": True,
            "momentum": 0.5,
            "weight_decay": 0.1,
        },
        _adam_like,
        lambda k, c: _adam_like(k, c, eps_power=0),
    ),
    (
        "adagrad",
        torch.optim.Adagrad,
        {"lr": 1e-2, "eps": 1e-3, "lr_decay": 0.01, "initial_accumulator_value": 0.1},
        lambda k, c: dict(
            _adam_like(k, c),
            initial_accumulator_value=k["initial_accumulator_value"] / c**2,
        ),
        _adam_like,
    ),
    (
        "adamax",
        torch.optim.Adamax,
        {"lr": 1e-2, "eps": 1e-1, "weight_decay": 0.1},
        _adam_like,
        lambda k, c: _adam_like(k, c, eps_power=0),
    ),
    (
        "nadamw",
        torch.optim.NAdam,
        {"lr": 1e-2, "eps": 1e-3, "weight_decay": 0.1, "decoupled_weight_decay": True},
        lambda k, c: _adam_like(k, c, wd_power=-1),
        _adam_like,
    ),
    (
        "rprop",
        torch.optim.Rprop,
        {"lr": 1e-2, "step_sizes": (1e-3, 2e-2)},
        lambda k, c: dict(
            k, lr=k["lr"] * c, step_sizes=tuple(s * c for s in k["step_sizes"])
        ),
        lambda k, c: dict(k, lr=k["lr"] * c),
    ),
    (
        "adadelta",
        torch.optim.Adadelta,
        {"lr": 1.0, "eps": 1e-3, "weight_decay": 0.1},
        lambda k, c: _adam_like(k, c, eps_power=-2) | {"lr": k["lr"] * c**2},
        _adam_like,
    ),
]


def _run_pair(
    optimizer: type,
    kwargs_v: dict,
    kwargs_w: dict,
    c: float,
    steps: int,
    dtype: torch.dtype = torch.float64,
    before_step: Callable | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train v (used as c * v) and w on the same quadratic loss; return c * v and w.

    ``before_step(optimizer, t)`` may change the hyperparameters of w before step t.

    The loss is sum(a_t * w + b * w**2 / 2) with a new a_t at each step, so each
    gradient depends on the current weights, as in training.
    """
    generator = torch.Generator().manual_seed(0)
    w0 = torch.randn(64, generator=generator, dtype=dtype)
    curvature = torch.rand(64, generator=generator, dtype=dtype)
    v = (w0 / c).clone().requires_grad_()
    w = w0.clone().requires_grad_()
    opt_v = optimizer([v], **kwargs_v)
    opt_w = optimizer([w], **kwargs_w)
    for t in range(1, steps + 1):
        slope = torch.randn(64, generator=generator, dtype=dtype)
        for param, opt, scale in ((v, opt_v, c), (w, opt_w, 1.0)):
            opt.zero_grad()
            effective = param * scale
            (slope * effective + curvature * effective**2 / 2).sum().backward()
            if before_step is not None and opt is opt_w:
                before_step(opt, t)
            opt.step()
    return (v * c).detach(), w.detach()


@pytest.mark.parametrize(
    ("name", "optimizer", "kwargs", "correct", "wrong"),
    TORCH_RUNS,
    ids=[row[0] for row in TORCH_RUNS],
)
def test_torch_optimizer_follows_runtime(
    name: str, optimizer: type, kwargs: dict, correct: Callable, wrong: Callable
) -> None:
    c = 0.1
    expected, got = _run_pair(optimizer, kwargs, correct(kwargs, c), c, steps=12)
    _, got_wrong = _run_pair(optimizer, kwargs, wrong(kwargs, c), c, steps=12)

    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(got_wrong, expected, rtol=1e-6, atol=0)


def _radam_hyperparameters(c: float, lr: float, weight_decay: float, decoupled: bool):
    def set_for_step(opt: torch.optim.Optimizer, t: int) -> None:
        group = opt.param_groups[0]
        beta2 = group["betas"][1]
        if radam_rho(beta2, t) > 5:
            group["lr"] = lr * c
            group["weight_decay"] = weight_decay / (c if decoupled else c**2)
        else:
            group["lr"] = lr * c**2
            group["weight_decay"] = weight_decay / c**2

    return set_for_step


@pytest.mark.parametrize("decoupled", [False, True])
def test_radam_torch_with_lr_per_step(decoupled: bool) -> None:
    c, lr, weight_decay = 0.1, 1e-2, 0.1
    kwargs = {
        "lr": lr,
        "eps": 1e-3,
        "weight_decay": weight_decay,
        "decoupled_weight_decay": decoupled,
    }
    switch = _radam_hyperparameters(c, lr, weight_decay, decoupled)
    fixed = _adam_like(kwargs, c, wd_power=-1 if decoupled else -2)

    expected, got = _run_pair(
        torch.optim.RAdam, kwargs, fixed, c, 12, before_step=switch
    )
    _, got_fixed = _run_pair(torch.optim.RAdam, kwargs, fixed, c, 12)

    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(got_fixed, expected, rtol=1e-6, atol=0)


def test_radam_rectification_starts_at_step_6() -> None:
    rectified = [t for t in range(1, 40) if radam_rho(0.999, t) > 5]

    assert rectified == list(range(6, 40))


def test_tensorflow_eps_placement() -> None:
    s, m, lr, beta1, beta2, eps_hat = sympy.symbols(
        "s m lr beta1 beta2 eps_hat", positive=True
    )
    t = sympy.Symbol("t", integer=True, positive=True)
    bias_correction1, bias_correction2 = 1 - beta1**t, 1 - beta2**t
    tensorflow = (
        lr
        * sympy.sqrt(bias_correction2)
        / bias_correction1
        * m
        / (sympy.sqrt(s) + eps_hat)
    )

    def torch_update(eps: sympy.Expr) -> sympy.Expr:
        denom = sympy.sqrt(s) / sympy.sqrt(bias_correction2) + eps
        return lr / bias_correction1 * m / denom

    matched = torch_update(eps_hat / sympy.sqrt(bias_correction2))
    assert sympy.simplify(tensorflow - matched) == 0
    assert sympy.simplify(tensorflow - torch_update(eps_hat)) != 0


# Initialization, derived in proofs/04-initialization.md.
def test_runtime_init_variance_is_he_variance() -> None:
    gain, lr_mul, fan_in = sympy.symbols("gain lr_mul fan_in", positive=True)
    c = gain * lr_mul / sympy.sqrt(fan_in)
    stored_variance = 1 / lr_mul**2

    assert sympy.simplify(c**2 * stored_variance - gain**2 / fan_in) == 0
    assert sympy.simplify(c**2 * 1 - gain**2 / fan_in) != 0


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_runtime_init_matches_he_init_numeric(lr_mul: float) -> None:
    shape = (256, 128, 3, 3)
    gain = math.sqrt(2.0)
    expected_std = gain / math.sqrt(128 * 9)
    generator = torch.Generator().manual_seed(0)
    c = equalized_scale(shape, gain, lr_mul)

    stored = torch.randn(shape, generator=generator, dtype=torch.float64) / lr_mul
    plain = he_init_(torch.nn.Conv2d(128, 256, 3).double(), gain, generator)

    # 294,912 samples: the standard error of a sample std is about 0.13%.
    assert (c * stored).std().item() == pytest.approx(expected_std, rel=0.01)
    assert plain.weight.std().item() == pytest.approx(expected_std, rel=0.01)
    assert c**2 / lr_mul**2 == pytest.approx(gain**2 / (128 * 9), rel=1e-14)


# Bitwise equality for powers of two, derived in proofs/05-bitwise.md.
def adam_intermediates(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    lr: float,
    eps: float,
    t: int,
) -> dict[str, torch.Tensor]:
    """Return each rounded value of one step of torch's for-loop Adam, in its order."""
    beta1, beta2 = 0.9, 0.999
    out = {"exp_avg": exp_avg.lerp(grad, 1 - beta1)}
    out["exp_avg_sq"] = exp_avg_sq.mul(beta2).addcmul(grad, grad, value=1 - beta2)
    step_size = lr / (1 - beta1**t)
    out["sqrt"] = out["exp_avg_sq"].sqrt()
    out["scaled_sqrt"] = out["sqrt"] / (1 - beta2**t) ** 0.5
    out["denom"] = out["scaled_sqrt"] + eps
    out["ratio"] = out["exp_avg"] / out["denom"]
    out["param"] = param.addcdiv(out["exp_avg"], out["denom"], value=-step_size)
    return out


# v-side value = c**power * w-side value.
INTERMEDIATE_POWERS = {
    "exp_avg": 1,
    "exp_avg_sq": 2,
    "sqrt": 1,
    "scaled_sqrt": 1,
    "denom": 1,
    "ratio": 0,
    "param": -1,
}


def _intermediate_pairs(
    c: float, dtype: torch.dtype, grad_size: float = 1e-4
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)

    def draw(size: float) -> torch.Tensor:
        return (torch.randn(4096, generator=generator, dtype=torch.float64) * size).to(
            dtype
        )

    w, grad_w, exp_avg_w = draw(0.05), draw(grad_size), draw(grad_size)
    exp_avg_sq_w = draw(grad_size) ** 2
    lr, eps = 1e-3, 1e-8
    on_v = adam_intermediates(
        w / c, grad_w * c, exp_avg_w * c, exp_avg_sq_w * c * c, lr, eps, t=7
    )
    on_w = adam_intermediates(w, grad_w, exp_avg_w, exp_avg_sq_w, lr * c, eps / c, t=7)
    return on_v, on_w


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c", [2.0**-4, 2.0**-11, 2.0**3])
def test_adam_intermediates_bitwise_power_of_two(c: float, dtype: torch.dtype) -> None:
    on_v, on_w = _intermediate_pairs(c, dtype)

    for name, power in INTERMEDIATE_POWERS.items():
        assert torch.equal(on_v[name], on_w[name] * c**power), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_intermediates_differ_for_non_power_of_two(dtype: torch.dtype) -> None:
    c = math.sqrt(2 / 512) * 1.1
    on_v, on_w = _intermediate_pairs(c, dtype)

    assert not torch.equal(on_v["param"], on_w["param"] * c**-1)


def test_adam_intermediates_differ_on_underflow() -> None:
    # g_w**2 is about 1e-40, a float32 subnormal, and c**2 * g_w**2 rounds to zero.
    c = 2.0**-20
    on_v, on_w = _intermediate_pairs(c, torch.float32, grad_size=1e-20)

    assert not torch.equal(on_v["exp_avg_sq"] / c**2, on_w["exp_avg_sq"])


@pytest.mark.parametrize(
    "implementation",
    [{"foreach": False}, {"foreach": True}, {"fused": True}],
    ids=["for-loop", "foreach", "fused"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_adam_bitwise_power_of_two(
    implementation: dict, dtype: torch.dtype
) -> None:
    c = 2.0**-5
    kwargs = {"lr": 1e-2, "eps": 1e-8, "weight_decay": 0.1, **implementation}
    kwargs_w = dict(kwargs, lr=1e-2 * c, eps=1e-8 / c, weight_decay=0.1 / c**2)

    expected, got = _run_pair(torch.optim.Adam, kwargs, kwargs_w, c, 10, dtype)

    assert torch.equal(got, expected)


# StyleGAN2's gain after the activation, derived in proofs/06-stylegan2-gain.md.
def test_leaky_relu_positively_homogeneous() -> None:
    a, alpha = sympy.symbols("a alpha", positive=True)

    def leaky_relu(x: sympy.Expr) -> sympy.Expr:
        return sympy.Piecewise((x, x >= 0), (alpha * x, True))

    for x in (sympy.Symbol("x", positive=True), sympy.Symbol("x", negative=True)):
        assert sympy.simplify(leaky_relu(a * x) - a * leaky_relu(x)) == 0
        assert sympy.simplify(leaky_relu(-a * x) - (-a) * leaky_relu(x)) != 0


def test_stylegan2_gain_moves_into_layer_inputs() -> None:
    generator = torch.Generator().manual_seed(2)
    weight = torch.randn(64, 32, generator=generator, dtype=torch.float64)
    bias, noise = (
        torch.randn(64, generator=generator, dtype=torch.float64) for _ in range(2)
    )
    x = torch.randn(8, 32, generator=generator, dtype=torch.float64)
    strength = 0.3
    root2 = math.sqrt(2.0)

    def lrelu(z: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.leaky_relu(z, 0.2)

    after = root2 * lrelu(x @ weight.T + bias + strength * noise)
    folded = lrelu(x @ (root2 * weight).T + root2 * bias + root2 * strength * noise)
    unscaled_bias = lrelu(x @ (root2 * weight).T + bias + root2 * strength * noise)

    torch.testing.assert_close(folded, after, rtol=1e-13, atol=1e-13)
    assert not torch.allclose(unscaled_bias, after)


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_stylegan2_constants_use_gain_one(lr_mul: float) -> None:
    assert equalized_scale((512, 512), 1.0, lr_mul) == pytest.approx(
        lr_mul / math.sqrt(512), rel=1e-15
    )
    assert equalized_scale((512,), 1.0, lr_mul) == lr_mul
    assert equalized_scale((), 1.0, lr_mul) == lr_mul


# What is not invariant, derived in proofs/08-not-invariant.md.
def _two_tensor_gradients() -> tuple[list[torch.Tensor], list[float]]:
    generator = torch.Generator().manual_seed(3)
    grads = [
        torch.randn(300, generator=generator, dtype=torch.float64),
        torch.randn(20, generator=generator, dtype=torch.float64),
    ]
    return grads, [0.0625, 1.0]


def test_global_norm_clip_needs_norm_of_scaled_gradient() -> None:
    grads_w, scales = _two_tensor_gradients()
    max_norm = 2.0
    params_v = [torch.zeros_like(g, requires_grad=True) for g in grads_w]
    for p, g, c in zip(params_v, grads_w, scales, strict=True):
        p.grad = c * g
    torch.nn.utils.clip_grad_norm_(params_v, max_norm)

    norm_v = torch.linalg.vector_norm(
        torch.cat([c * g for g, c in zip(grads_w, scales, strict=True)])
    )
    coefficient = min(1.0, max_norm / (norm_v.item() + 1e-6))
    params_w = [torch.zeros_like(g, requires_grad=True) for g in grads_w]
    for p, g in zip(params_w, grads_w, strict=True):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params_w, max_norm)

    for p_v, g, c in zip(params_v, grads_w, scales, strict=True):
        torch.testing.assert_close(p_v.grad, c * coefficient * g, rtol=1e-14, atol=0)
    naive = [c * p.grad for p, c in zip(params_w, scales, strict=True)]
    assert not torch.allclose(torch.cat(naive), torch.cat([p.grad for p in params_v]))


def test_value_clamp_threshold_scales_by_c() -> None:
    grads_w, scales = _two_tensor_gradients()
    clip_value = 0.05

    for g, c in zip(grads_w, scales[:1], strict=False):
        clamped_v = (c * g).clamp(-clip_value, clip_value)
        matched = c * g.clamp(-clip_value / c, clip_value / c)
        naive = c * g.clamp(-clip_value, clip_value)

        assert torch.equal(clamped_v, matched)
        assert not torch.equal(clamped_v, naive)


def eps_error(c: float, root_s: float, eps: float) -> float:
    """Return update(eps) / update(eps / c) - 1 for Adam on w with lr * c."""
    return eps * (1 / c - 1) / (root_s + eps)


@pytest.mark.parametrize(
    "c", [math.sqrt(2 / 512), math.sqrt(2) * 0.01 / math.sqrt(512)]
)
@pytest.mark.parametrize("grad", [1e-6, 1e-5, 1e-3])
def test_unscaled_eps_error_formula(c: float, grad: float) -> None:
    eps = 1e-8
    updates = []
    for eps_w in (eps / c, eps):
        w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.Adam([w], lr=1e-3 * c, eps=eps_w)
        for _ in range(5):
            before = w.detach().clone()
            w.grad = torch.full_like(w, grad)
            optimizer.step()
        updates.append((before - w.detach()).item())

    measured = updates[1] / updates[0] - 1
    # A constant gradient gives sqrt(s_hat) = |g| exactly, up to rounding.
    assert measured == pytest.approx(eps_error(c, grad, eps), rel=1e-8)


@pytest.mark.parametrize(
    ("c", "grad", "expected"),
    [
        (0.0625, 1e-6, 0.1485),
        (0.0625, 1e-5, 0.01499),
        (0.0625, 1e-4, 0.0015),
        (0.000625, 1e-5, 1.597),
        (0.0625, 1e-3, 1.5e-4),
        (0.000625, 1e-6, 15.83),
        (0.000625, 1e-4, 0.1599),
        (0.000625, 1e-3, 0.01599),
    ],
)
def test_unscaled_eps_error_table(c: float, grad: float, expected: float) -> None:
    assert eps_error(c, grad, 1e-8) == pytest.approx(expected, rel=1e-3)
