"""One step of each torch optimizer on one coordinate, and a checker of substitutions.

Each step function follows the single-tensor loop (``_single_tensor_<name>``, the
default on CPU) of ``torch.optim`` 2.13, operation by operation, on scalars that may
be sympy expressions. Branches of the update (a maximum, a sign, a clamp, RAdam's
rectification test) go through a ``Decisions`` object, so the checker can follow
every branch symbolically.

The checker takes an optimizer case and a substitution of its hyperparameters. It
runs the optimizer on the stored ``v = w / c`` with the gradient ``c * g_w`` and on
``w`` with the substituted hyperparameters and the gradient ``g_w``, and compares
the results: the parameters must obey ``w_t = c * v_t``, and each state must obey
its invariant ``state_v = c**power * state_w``. It checks the initial state and
one step from it (the base of the induction), and one step from an arbitrary state
that obeys the invariant at an arbitrary step count (the induction step).
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy

__all__ = [
    "CASES",
    "Case",
    "Decisions",
    "substitution_mismatches",
]

State = dict[str, Any]
Hyper = dict[str, Any]
Substitution = Callable[[sympy.Expr, Hyper, dict[str, int]], Hyper]

HALF = sympy.Rational(1, 2)
NADAM_DECAY_BASE = sympy.Rational(96, 100)
"""NAdam's constant 0.96 in torch's momentum schedule, as an exact rational."""


class MoreChoicesNeeded(Exception):
    """Raised when a step reaches a branch that its list of choices does not cover."""

    def __init__(self, outcomes: int) -> None:
        super().__init__(outcomes)
        self.outcomes = outcomes


class InfeasibleBranch(Exception):
    """Raised when a branch contradicts the assumptions sympy has on its expression."""


class Decisions:
    """Branch choices for one run of a step, and the expressions that decide them.

    Each branch point records ``(name, expression)``: the branch is decided by the
    sign of the expression, so two runs take the same branch in every real case
    when their expressions differ by a positive factor.
    """

    def __init__(self, choices: tuple[int, ...]) -> None:
        self.choices = choices
        self.recorded: list[tuple[str, sympy.Expr]] = []

    def _choose(self, name: str, expression: Any, outcomes: int) -> int:
        index = len(self.recorded)
        if index >= len(self.choices):
            raise MoreChoicesNeeded(outcomes)
        expression = sympy.sympify(expression)
        self.recorded.append((name, expression))
        choice = self.choices[index]
        if _known_to_contradict(expression, outcomes, choice):
            raise InfeasibleBranch(name)
        return choice

    def taken(self) -> dict[str, int]:
        """Return the outcome chosen at each named branch point."""
        return {
            name: choice
            for (name, _), choice in zip(self.recorded, self.choices, strict=False)
        }

    def maximum(self, name: str, a: Any, b: Any) -> Any:
        return a if self._choose(name, a - b, 2) == 0 else b

    def minimum(self, name: str, a: Any, b: Any) -> Any:
        return a if self._choose(name, b - a, 2) == 0 else b

    def sign(self, name: str, x: Any) -> int:
        return (1, -1, 0)[self._choose(name, x, 3)]

    def is_positive(self, name: str, x: Any) -> bool:
        return self._choose(name, x, 2) == 0


def _known_to_contradict(expression: sympy.Expr, outcomes: int, choice: int) -> bool:
    # Two outcomes mean "expression >= 0" (0) or "expression <= 0" (1); three mean
    # the sign of the expression: positive (0), negative (1) or zero (2).
    if outcomes == 2:
        known = expression.is_negative if choice == 0 else expression.is_positive
    else:
        known = (
            expression.is_positive,
            expression.is_negative,
            expression.is_zero,
        )[choice] is False
    return bool(known)


def _maybe_negate(grad: Any, hp: Hyper) -> Any:
    return -grad if hp.get("maximize", False) else grad


def _l2(grad: Any, param: Any, hp: Hyper) -> Any:
    if hp["weight_decay"] != 0 and not hp.get("decoupled_weight_decay", False):
        return grad + hp["weight_decay"] * param
    return grad


def _decoupled(param: Any, hp: Hyper) -> Any:
    if hp["weight_decay"] != 0 and hp.get("decoupled_weight_decay", False):
        return param * (1 - hp["lr"] * hp["weight_decay"])
    return param


def _lerp(start: Any, end: Any, weight: Any) -> Any:
    return start + weight * (end - start)


def adam_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    t = st["step"] + 1
    g = _maybe_negate(g, hp)
    p = _decoupled(p, hp)
    g = _l2(g, p, hp)

    exp_avg = _lerp(st["exp_avg"], g, 1 - hp["beta1"])
    exp_avg_sq = st["exp_avg_sq"] * hp["beta2"] + (1 - hp["beta2"]) * g * g

    bias_correction1 = 1 - hp["beta1"] ** t
    bias_correction2 = 1 - hp["beta2"] ** t
    step_size = hp["lr"] / bias_correction1
    new = {"step": t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    if hp["amsgrad"]:
        new["max_exp_avg_sq"] = ops.maximum("amsgrad", st["max_exp_avg_sq"], exp_avg_sq)
        second = new["max_exp_avg_sq"]
    else:
        second = exp_avg_sq
    denom = sympy.sqrt(second) / sympy.sqrt(bias_correction2) + hp["eps"]

    return p - step_size * exp_avg / denom, new


def adam_init(p: Any, hp: Hyper) -> State:
    state = {"step": 0, "exp_avg": 0, "exp_avg_sq": 0}
    if hp["amsgrad"]:
        state["max_exp_avg_sq"] = 0
    return state


def tf_adam_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    """Adam as TensorFlow and Keras write it: eps beside sqrt(s), outside the
    bias correction, which is folded into the learning rate."""
    t = st["step"] + 1
    exp_avg = hp["beta1"] * st["exp_avg"] + (1 - hp["beta1"]) * g
    exp_avg_sq = hp["beta2"] * st["exp_avg_sq"] + (1 - hp["beta2"]) * g * g

    lr_t = hp["lr"] * sympy.sqrt(1 - hp["beta2"] ** t) / (1 - hp["beta1"] ** t)
    p = p - lr_t * exp_avg / (sympy.sqrt(exp_avg_sq) + hp["eps"])
    return p, {"step": t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def sgd_step(p: Any, g: Any, st: State, hp: Hyper, ops: Decisions) -> tuple[Any, State]:
    g = _maybe_negate(g, hp)
    g = _l2(g, p, hp)

    buf = st["momentum_buffer"]
    if hp["momentum"] != 0:
        # torch starts the buffer at the first gradient, without dampening.
        buf = g if buf is None else buf * hp["momentum"] + (1 - hp["dampening"]) * g
        g = g + hp["momentum"] * buf if hp["nesterov"] else buf

    return p - hp["lr"] * g, {"momentum_buffer": buf}


def sgd_init(p: Any, hp: Hyper) -> State:
    return {"momentum_buffer": None}


def rmsprop_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    g = _maybe_negate(g, hp)
    g = _l2(g, p, hp)

    square_avg = st["square_avg"] * hp["alpha"] + (1 - hp["alpha"]) * g * g
    new = {"square_avg": square_avg}
    if hp["centered"]:
        grad_avg = _lerp(st["grad_avg"], g, 1 - hp["alpha"])
        new["grad_avg"] = grad_avg
        avg = sympy.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = sympy.sqrt(square_avg)
    avg = avg + hp["eps"]

    if hp["momentum"] > 0:
        buf = st["momentum_buffer"] * hp["momentum"] + g / avg
        new["momentum_buffer"] = buf
        return p - hp["lr"] * buf, new
    return p - hp["lr"] * g / avg, new


def rmsprop_init(p: Any, hp: Hyper) -> State:
    state = {"square_avg": 0}
    if hp["centered"]:
        state["grad_avg"] = 0
    if hp["momentum"] > 0:
        state["momentum_buffer"] = 0
    return state


def adagrad_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    t = st["step"] + 1
    g = _maybe_negate(g, hp)
    g = _l2(g, p, hp)

    clr = hp["lr"] / (1 + (t - 1) * hp["lr_decay"])
    state_sum = st["sum"] + g * g
    std = sympy.sqrt(state_sum) + hp["eps"]

    return p - clr * g / std, {"step": t, "sum": state_sum}


def adagrad_init(p: Any, hp: Hyper) -> State:
    return {"step": 0, "sum": hp["initial_accumulator_value"]}


def adamax_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    t = st["step"] + 1
    g = _maybe_negate(g, hp)
    g = _l2(g, p, hp)

    exp_avg = _lerp(st["exp_avg"], g, 1 - hp["beta1"])
    # torch adds eps to |g| inside the maximum, not to the denominator.
    exp_inf = ops.maximum("exp_inf", st["exp_inf"] * hp["beta2"], abs(g) + hp["eps"])

    clr = hp["lr"] / (1 - hp["beta1"] ** t)
    return p - clr * exp_avg / exp_inf, {
        "step": t,
        "exp_avg": exp_avg,
        "exp_inf": exp_inf,
    }


def adamax_init(p: Any, hp: Hyper) -> State:
    return {"step": 0, "exp_avg": 0, "exp_inf": 0}


def nadam_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    t = st["step"] + 1
    g = _maybe_negate(g, hp)
    bias_correction2 = 1 - hp["beta2"] ** t
    p = _decoupled(p, hp)
    g = _l2(g, p, hp)

    psi = hp["momentum_decay"]
    mu = hp["beta1"] * (1 - HALF * NADAM_DECAY_BASE ** (t * psi))
    mu_next = hp["beta1"] * (1 - HALF * NADAM_DECAY_BASE ** ((t + 1) * psi))
    mu_product = st["mu_product"] * mu

    exp_avg = _lerp(st["exp_avg"], g, 1 - hp["beta1"])
    exp_avg_sq = st["exp_avg_sq"] * hp["beta2"] + (1 - hp["beta2"]) * g * g
    denom = sympy.sqrt(exp_avg_sq / bias_correction2) + hp["eps"]

    mu_product_next = mu_product * mu_next
    p = p - hp["lr"] * (1 - mu) / (1 - mu_product) * g / denom
    p = p - hp["lr"] * mu_next / (1 - mu_product_next) * exp_avg / denom
    new = {
        "step": t,
        "exp_avg": exp_avg,
        "exp_avg_sq": exp_avg_sq,
        "mu_product": mu_product,
    }
    return p, new


def nadam_init(p: Any, hp: Hyper) -> State:
    return {"step": 0, "exp_avg": 0, "exp_avg_sq": 0, "mu_product": 1}


def radam_rho(beta2: Any, t: Any) -> Any:
    """Return RAdam's length of the approximated simple moving average at step t."""
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf - 2 * t * beta2**t / (1 - beta2**t)


def radam_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    t = st["step"] + 1
    g = _maybe_negate(g, hp)
    p = _decoupled(p, hp)
    g = _l2(g, p, hp)

    exp_avg = _lerp(st["exp_avg"], g, 1 - hp["beta1"])
    exp_avg_sq = st["exp_avg_sq"] * hp["beta2"] + (1 - hp["beta2"]) * g * g
    new = {"step": t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}

    bias_correction1 = 1 - hp["beta1"] ** t
    bias_correction2 = 1 - hp["beta2"] ** t
    bias_corrected_exp_avg = exp_avg / bias_correction1
    rho_inf = 2 / (1 - hp["beta2"]) - 1
    rho_t = radam_rho(hp["beta2"], t)

    if not ops.is_positive("rectified", rho_t - 5):
        return p - bias_corrected_exp_avg * hp["lr"], new
    rect = sympy.sqrt(
        (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
    )
    adaptive_lr = sympy.sqrt(bias_correction2) / (sympy.sqrt(exp_avg_sq) + hp["eps"])
    return p - bias_corrected_exp_avg * hp["lr"] * adaptive_lr * rect, new


def radam_init(p: Any, hp: Hyper) -> State:
    return {"step": 0, "exp_avg": 0, "exp_avg_sq": 0}


def rprop_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    g = _maybe_negate(g, hp)

    change = ops.sign("sign change", g * st["prev"])
    factor = {1: hp["etaplus"], -1: hp["etaminus"], 0: 1}[change]
    step_size = ops.maximum(
        "step_size_min", st["step_size"] * factor, hp["step_size_min"]
    )
    step_size = ops.minimum("step_size_max", step_size, hp["step_size_max"])

    # After a sign change torch skips the update and stores a zero gradient.
    if change == -1:
        g = 0
    direction = 0 if g == 0 else ops.sign("update sign", g)

    return p - direction * step_size, {"prev": g, "step_size": step_size}


def rprop_init(p: Any, hp: Hyper) -> State:
    return {"prev": 0, "step_size": hp["lr"]}


def adadelta_step(
    p: Any, g: Any, st: State, hp: Hyper, ops: Decisions
) -> tuple[Any, State]:
    g = _maybe_negate(g, hp)
    g = _l2(g, p, hp)

    square_avg = st["square_avg"] * hp["rho"] + (1 - hp["rho"]) * g * g
    std = sympy.sqrt(square_avg + hp["eps"])
    delta = sympy.sqrt(st["acc_delta"] + hp["eps"]) / std * g
    acc_delta = st["acc_delta"] * hp["rho"] + (1 - hp["rho"]) * delta * delta

    return p - hp["lr"] * delta, {"square_avg": square_avg, "acc_delta": acc_delta}


def adadelta_init(p: Any, hp: Hyper) -> State:
    return {"square_avg": 0, "acc_delta": 0}


@dataclass(frozen=True)
class Case:
    """One optimizer with one set of options: its update and its state invariant.

    ``powers`` gives, for each state entry, the power p in ``state_v = c**p *
    state_w``. ``nonnegative`` lists the state entries that are sums of squares.
    """

    name: str
    step: Callable[..., tuple[Any, State]]
    init: Callable[[Any, Hyper], State]
    hyperparameters: Hyper
    powers: dict[str, int]
    nonnegative: frozenset[str] = field(default_factory=frozenset)


def _symbols(names: str) -> dict[str, sympy.Symbol]:
    return {name: sympy.Symbol(name, positive=True) for name in names.split()}


def _adam_case(
    name: str, step: Callable[..., Any], init: Callable[..., Any], extra: Hyper
) -> Case:
    hp: Hyper = _symbols("lr beta1 beta2 eps")
    hp.update(extra)
    powers = {"step": 0, "exp_avg": 1, "exp_avg_sq": 2}
    if extra.get("amsgrad"):
        powers["max_exp_avg_sq"] = 2
    if step is nadam_step:
        powers["mu_product"] = 0
        hp["momentum_decay"] = sympy.Symbol("momentum_decay", positive=True)
    return Case(
        name, step, init, hp, powers, frozenset({"exp_avg_sq", "max_exp_avg_sq"})
    )


_WD = sympy.Symbol("weight_decay", positive=True)
_ADAM_FLAGS = {
    "amsgrad": False,
    "maximize": False,
    "weight_decay": 0,
    "decoupled_weight_decay": False,
}


def _flags(**changes: Any) -> Hyper:
    return {**_ADAM_FLAGS, **changes}


CASES: dict[str, Case] = {
    case.name: case
    for case in [
        _adam_case("adam", adam_step, adam_init, _flags()),
        _adam_case("adam amsgrad", adam_step, adam_init, _flags(amsgrad=True)),
        _adam_case("tensorflow adam", tf_adam_step, adam_init, _flags()),
        _adam_case("adam maximize", adam_step, adam_init, _flags(maximize=True)),
        _adam_case("adam l2", adam_step, adam_init, _flags(weight_decay=_WD)),
        _adam_case(
            "adamw",
            adam_step,
            adam_init,
            _flags(weight_decay=_WD, decoupled_weight_decay=True, amsgrad=True),
        ),
        Case(
            "sgd",
            sgd_step,
            sgd_init,
            {
                **_symbols("lr momentum dampening"),
                "nesterov": False,
                "weight_decay": _WD,
                "maximize": False,
            },
            {"momentum_buffer": 1},
        ),
        Case(
            "sgd nesterov",
            sgd_step,
            sgd_init,
            {
                **_symbols("lr momentum"),
                "dampening": 0,
                "nesterov": True,
                "weight_decay": _WD,
                "maximize": True,
            },
            {"momentum_buffer": 1},
        ),
        Case(
            "rmsprop",
            rmsprop_step,
            rmsprop_init,
            {
                **_symbols("lr alpha eps"),
                "momentum": 0,
                "centered": False,
                "weight_decay": _WD,
            },
            {"square_avg": 2},
            frozenset({"square_avg"}),
        ),
        Case(
            "rmsprop centered momentum",
            rmsprop_step,
            rmsprop_init,
            {**_symbols("lr alpha eps momentum"), "centered": True, "weight_decay": 0},
            {"square_avg": 2, "grad_avg": 1, "momentum_buffer": 0},
            frozenset({"square_avg"}),
        ),
        Case(
            "adagrad",
            adagrad_step,
            adagrad_init,
            {
                **_symbols("lr lr_decay eps initial_accumulator_value"),
                "weight_decay": _WD,
            },
            {"step": 0, "sum": 2},
            frozenset({"sum"}),
        ),
        Case(
            "adamax",
            adamax_step,
            adamax_init,
            {**_symbols("lr beta1 beta2 eps"), "weight_decay": _WD},
            {"step": 0, "exp_avg": 1, "exp_inf": 1},
            frozenset({"exp_inf"}),
        ),
        _adam_case("nadam", nadam_step, nadam_init, _flags(weight_decay=_WD)),
        _adam_case(
            "nadamw",
            nadam_step,
            nadam_init,
            _flags(weight_decay=_WD, decoupled_weight_decay=True),
        ),
        _adam_case("radam", radam_step, radam_init, _flags(weight_decay=_WD)),
        _adam_case(
            "radamw",
            radam_step,
            radam_init,
            _flags(weight_decay=_WD, decoupled_weight_decay=True),
        ),
        Case(
            "rprop",
            rprop_step,
            rprop_init,
            {
                **_symbols("lr etaminus etaplus step_size_min step_size_max"),
                "maximize": False,
            },
            {"prev": 1, "step_size": -1},
            frozenset({"step_size"}),
        ),
        Case(
            "adadelta",
            adadelta_step,
            adadelta_init,
            {**_symbols("lr rho eps"), "weight_decay": _WD},
            {"square_avg": 2, "acc_delta": 2},
            frozenset({"square_avg", "acc_delta"}),
        ),
    ]
}
"""Every optimizer case the notes derive, by name."""


def _sample_value(symbol: sympy.Symbol) -> sympy.Rational:
    rng = random.Random(symbol.name)
    if symbol.is_integer:
        return sympy.Integer(rng.randint(2, 9))
    value = sympy.Rational(rng.randint(50, 950), 1000)
    if not symbol.is_nonnegative and rng.random() < 0.5:
        return -value
    return value


def _is_zero(expression: Any) -> bool:
    """Return whether an expression is identically zero.

    A value far from zero at one sample point proves it is not, and is much
    faster than a failed simplification. Only a zero there calls ``simplify``.
    """
    expression = sympy.sympify(expression)
    point = {symbol: _sample_value(symbol) for symbol in expression.free_symbols}
    value = expression.subs(point).evalf(40)
    if value.is_number and value.is_finite and abs(value) > sympy.Float("1e-25"):
        return False
    normalized = sympy.together(sympy.expand(_factor_radicands(expression)))
    return sympy.simplify(normalized) == 0


def _is_radical(expression: sympy.Expr) -> bool:
    if isinstance(expression, sympy.Abs):
        return True
    return bool(
        expression.is_Pow
        and expression.exp.is_Rational
        and not expression.exp.is_integer
    )


def _factor_radicands(expression: sympy.Expr) -> sympy.Expr:
    # sympy takes c out of sqrt(c**2 * x) and |c * x| only when c is a factor of
    # the argument, as in sqrt(c**2 * (a + b)), not in sqrt(c**2 * a + c**2 * b).
    return expression.replace(
        _is_radical,
        lambda radical: radical.func(*[sympy.factor(arg) for arg in radical.args]),
    )


def _same_sign(v_side: Any, w_side: Any) -> bool:
    if _is_zero(w_side):
        return _is_zero(v_side)
    ratio = sympy.simplify(sympy.sympify(v_side) / w_side)
    return bool(ratio.is_positive)


def _state_mismatches(
    label: str, c: sympy.Expr, case: Case, state_v: State, state_w: State
) -> list[str]:
    found = []
    for key, power in case.powers.items():
        a, b = state_v.get(key), state_w.get(key)
        if a is None and b is None:
            continue
        if a is None or b is None or not _is_zero(a - c**power * b):
            found.append(f"{label}: {key}_v != c**{power} * {key}_w")
    return found


def _step_mismatches(
    label: str,
    case: Case,
    substitute: Substitution,
    c: sympy.Expr,
    w: sympy.Expr,
    states: tuple[State, State],
) -> list[str]:
    hp = case.hyperparameters
    grad_w = sympy.Symbol("g", real=True)
    state_v, state_w = states

    found: list[str] = []
    pending: list[tuple[int, ...]] = [()]
    while pending:
        choices = pending.pop()
        ops_v = Decisions(choices)
        try:
            v_next, state_v_next = case.step(w / c, c * grad_w, state_v, hp, ops_v)
        except MoreChoicesNeeded as more:
            pending.extend(choices + (k,) for k in range(more.outcomes))
            continue
        except InfeasibleBranch:
            continue

        ops_w = Decisions(choices)
        hp_w = substitute(c, hp, ops_v.taken())
        branch = f"{label}, branch {choices}"
        try:
            w_next, state_w_next = case.step(w, grad_w, state_w, hp_w, ops_w)
        except InfeasibleBranch as infeasible:
            found.append(f"{branch}: branch {infeasible} impossible on w")
            continue

        names_v = [name for name, _ in ops_v.recorded]
        names_w = [name for name, _ in ops_w.recorded]
        if names_v != names_w:
            found.append(f"{branch}: branch points differ")
            continue
        for (name, d_v), (_, d_w) in zip(ops_v.recorded, ops_w.recorded, strict=True):
            if not _same_sign(d_v, d_w):
                found.append(f"{branch}: branch {name!r} decided differently")
        if not _is_zero(c * v_next - w_next):
            found.append(f"{branch}: c * v_t != w_t")
        found += _state_mismatches(branch, c, case, state_v_next, state_w_next)
    return found


def substitution_mismatches(case: Case, substitute: Substitution) -> list[str]:
    """Return every way in which ``substitute`` fails to make ``w_t = c * v_t``.

    ``substitute(c, hyperparameters, taken)`` returns the hyperparameters of the
    optimizer on ``w``. ``taken`` maps each named branch point of the step on
    ``v`` to its outcome, so that a substitution may depend on the branch, as
    RAdam's does.
    An empty list is a proof for all ``c > 0``, all hyperparameters, all
    gradients and all steps. The base is the initial state and the first step from
    it; the induction step starts from symbols that obey the invariant.
    """
    c = sympy.Symbol("c", positive=True)
    w = sympy.Symbol("w", real=True)
    hp = case.hyperparameters

    init_v = case.init(w / c, hp)
    init_w = case.init(w, substitute(c, hp, {}))
    found = _state_mismatches("initial state", c, case, init_v, init_w)
    found += _step_mismatches("first step", case, substitute, c, w, (init_v, init_w))

    generic: State = {}
    for key in init_w:
        if key == "step":
            generic[key] = sympy.Symbol("t", integer=True, nonnegative=True)
        elif key in case.nonnegative:
            generic[key] = sympy.Symbol(f"{key}_w", nonnegative=True)
        else:
            generic[key] = sympy.Symbol(f"{key}_w", real=True)
    generic_v = {key: c ** case.powers[key] * value for key, value in generic.items()}
    found += _step_mismatches(
        "induction step", case, substitute, c, w, (generic_v, generic)
    )
    return found
