"""Adam that trains plain layers on the trajectory of runtime-scaled ones."""

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, cast

import torch
from torch import Tensor
from torch.optim.adam import adam
from torch.optim.optimizer import Optimizer, ParamsT, _use_grad_for_differentiable

from .checks import (
    CONSTANT_KEYS,
    check_adam_arguments,
    check_group_keys,
    check_group_values,
    check_scale,
    check_state_dict,
    check_step_tensors,
)
from .scales import (
    DEFAULT_GAIN,
    check_positive_finite,
    equalized_scale,
    zero_fan_in_error,
)

__all__ = ["EqualizedAdam", "adam_hyperparameters"]


def adam_hyperparameters(
    scale: float,
    lr: float | Tensor,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
) -> tuple[float | Tensor, float, float]:
    """Return ``(lr, eps, weight_decay)`` that make Adam on ``w`` equal Adam on ``v``.

    With ``w = scale * v`` the gradients obey ``g_v = scale * g_w``, so Adam's
    moments obey ``m_v = scale * m_w`` and ``s_v = scale**2 * s_w``. The step
    ``lr * m / (sqrt(s) + eps)`` taken on ``v`` moves ``w`` by ``scale`` times as
    much, and eps sits beside ``sqrt(s)``, so it shrinks by ``scale``. L2 decay
    enters the gradient and needs ``scale**2``; decoupled decay is multiplied by
    ``lr``, which already carries one factor of ``scale``.
    """
    if scale == 1.0:
        # The same objects, so that a Tensor lr is not copied at every step.
        return lr, eps, weight_decay
    if decoupled_weight_decay:
        weight_decay = weight_decay / scale
    else:
        weight_decay = weight_decay / (scale * scale)
    return lr * scale, eps / scale, weight_decay


def _group_hyperparameters(
    group: dict[str, Any], scale: float
) -> tuple[float | Tensor, float, float]:
    return adam_hyperparameters(
        scale,
        group["lr"],
        group["eps"],
        group["weight_decay"],
        group["decoupled_weight_decay"],
    )


def _bucket_by_scale(scales: list[float]) -> dict[float, list[int]]:
    """Return the positions of each distinct constant, in order of appearance."""
    buckets: dict[float, list[int]] = {}
    for i, c in enumerate(scales):
        buckets.setdefault(c, []).append(i)
    return buckets


def _select(lists: list[list[Tensor]], positions: list[int]) -> list[list[Tensor]]:
    # max_exp_avg_sqs is empty without amsgrad, and stays empty.
    return [[lst[i] for i in positions] if lst else lst for lst in lists]


def _iter_tensors(params: Iterable[Any]) -> Iterator[tuple[str | None, Tensor]]:
    # A group lists tensors, or (name, tensor) pairs when built from named_parameters().
    for item in params:
        if isinstance(item, tuple) and len(item) == 2:
            yield item[0], item[1]
        else:
            yield None, item


class EqualizedAdam(torch.optim.Adam):
    r"""Adam with ProGAN's equalized learning rate, applied in the optimizer.

    ProGAN stores each weight as :math:`v` and uses :math:`w = c\,v` at run time.
    This optimizer stores :math:`w` itself, as a plain He-initialized layer does,
    and takes the step that Adam on :math:`v` would take, seen in :math:`w`:

    .. math::
       \begin{aligned}
         &c = \text{scale} \text{ if given, else }
             \begin{cases}
               \text{gain}\cdot\text{lr\_mul}/\sqrt{\text{fan\_in}} &
                 \text{tensor of 2 or more dims} \\
               \text{lr\_mul} & \text{otherwise}
             \end{cases} \\
         &\text{fan\_in} = \textstyle\prod_{k \ge 1} \text{shape}[k] \\
         &\gamma_c = \gamma\,c, \quad \epsilon_c = \epsilon / c, \quad
           \lambda_c = \begin{cases}
               \lambda / c & \text{decoupled weight decay} \\
               \lambda / c^2 & \text{L2 weight decay}
           \end{cases} \\
         &\textbf{for } t = 1, 2, \ldots: \\
         &\quad g_t = \nabla_w f_t(w_{t-1}) \; (\text{negated if maximize}) \\
         &\quad \text{L2: } g_t \leftarrow g_t + \lambda_c w_{t-1}, \quad
            \text{decoupled: } w_{t-1} \leftarrow w_{t-1}(1 - \gamma_c\lambda_c) \\
         &\quad m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
            s_t = \beta_2 s_{t-1} + (1 - \beta_2) g_t^2 \\
         &\quad \hat{s}_t = \max(\hat{s}_{t-1}, s_t) \text{ if amsgrad, else } s_t \\
         &\quad w_t = w_{t-1} - \gamma_c \, \frac{m_t / (1 - \beta_1^t)}
            {\sqrt{\hat{s}_t / (1 - \beta_2^t)} + \epsilon_c}
       \end{aligned}

    The moments equal the runtime formulation's up to the factors
    :math:`m_v = c\,m_w` and :math:`s_v = c^2 s_w`, so the parameters follow the same
    trajectory :math:`w_t = c\,v_t` (bit for bit when every c is a power of two).
    The derivation is in the package's ``proofs/`` notes.

    Args:
        params: parameters, named parameters or parameter groups, as for
            :class:`torch.optim.Adam`. A group may set its own ``gain``,
            ``lr_mul`` and ``scale``.
        lr: learning rate :math:`\gamma` of the runtime formulation (default 1e-3).
            ``group['lr']`` keeps this value, so lr schedulers work unchanged.
        betas: coefficients of the running averages (default (0.9, 0.999)).
        eps: :math:`\epsilon` of the runtime formulation (default 1e-8).
        weight_decay: :math:`\lambda` of the runtime formulation (default 0).
        amsgrad, foreach, maximize, capturable, differentiable, fused,
        decoupled_weight_decay: as for :class:`torch.optim.Adam`.
        gain: gain of the He constant (default :math:`\sqrt{2}`). Use 1 where the
            network multiplies by :math:`\sqrt{2}` after the activation, as
            StyleGAN2 does.
        lr_mul: learning-rate multiplier of the runtime formulation (default 1).
            It also scales biases, as in StyleGAN's mapping network.
        scale: an explicit constant c for every tensor of a group, replacing the
            shape rule (default None).

    .. note::
        The rule reads ``fan_in`` from the tensor's shape as ``prod(shape[1:])``,
        which is the fan-in of ``nn.Linear`` and ``nn.Conv*d`` weights. For a
        transposed convolution or a tensor laid out another way, give its group
        an explicit ``scale``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        gain: float = DEFAULT_GAIN,
        lr_mul: float = 1.0,
        scale: float | None = None,
    ) -> None:
        check_adam_arguments(lr, betas, eps, weight_decay)
        # Adam.__init__ builds self.defaults without these keys and then adds the
        # groups, so add_param_group reads them from here.
        self._constant_defaults = {
            "gain": check_positive_finite("gain", gain),
            "lr_mul": check_positive_finite("lr_mul", lr_mul),
            "scale": check_scale(scale),
        }
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, after checking its constants and the fan-in of its tensors."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group)}")
        check_group_keys(param_group)
        # Pickling keeps only defaults, state and param_groups, so an unpickled
        # optimizer has no _constant_defaults, but its defaults hold the keys.
        constant_defaults: dict[str, Any] = getattr(self, "_constant_defaults", {})
        for key, value in constant_defaults.items():
            self.defaults.setdefault(key, value)

        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif not isinstance(params, set):
            # A generator would be used up by the checks below.
            params = list(params)
        # The checks run on a copy, so that a rejected group leaves the caller's
        # dict as it was. An accepted one is the caller's dict, as in torch, so
        # that changes made through it later take effect.
        group = {**param_group, "params": params}
        for key in CONSTANT_KEYS:
            group.setdefault(key, self.defaults[key])
        check_group_values(group)
        self._group_scales(group, with_grad_only=False)
        param_group.update(group)
        super().add_param_group(param_group)

    def _group_scales(self, group: dict[str, Any], with_grad_only: bool) -> list[float]:
        # Read at every step, so a group's constants can be changed between steps
        # as its lr can.
        constants = (
            check_positive_finite("gain", group.get("gain")),
            check_positive_finite("lr_mul", group.get("lr_mul")),
            check_scale(group.get("scale")),
        )
        if not with_grad_only:
            # Non-tensors are left for torch's add_param_group to reject.
            tensors = [
                (n, p)
                for n, p in _iter_tensors(group["params"])
                if isinstance(p, Tensor)
            ]
            return self._compute_scales(group, tensors, constants)

        # A constant depends only on the group's constants and the tensor's shape,
        # so the list is reused while neither changes, which spares computing each
        # constant at every step. The cache is keyed by the id of the group's
        # list, and a hit counts only if the constants and every shape match, so
        # a reused id cannot give a stale constant. Added groups hold tensors,
        # not name pairs.
        params: list[Tensor] = group["params"]
        shapes = [p.shape for p in params]
        cache: dict[int, Any] = self.__dict__.setdefault("_scale_cache", {})
        cached = cache.get(id(params))
        if cached is not None and cached[0] == constants and cached[1] == shapes:
            scales = cached[2]
        else:
            scales = self._compute_scales(group, list(_iter_tensors(params)), constants)
            cache[id(params)] = (constants, shapes, scales)
        return [c for c, p in zip(scales, params, strict=True) if p.grad is not None]

    @staticmethod
    def _compute_scales(
        group: dict[str, Any],
        tensors: list[tuple[str | None, Tensor]],
        constants: tuple[float, float, float | None],
    ) -> list[float]:
        scales = []
        for i, (name, p) in enumerate(tensors):
            try:
                scales.append(equalized_scale(p.shape, *constants))
            except ValueError:
                names = group.get("param_names")
                if name is None and names:
                    name = names[i]
                label = f"parameter {i}" if name is None else repr(name)
                raise zero_fan_in_error(label, p.shape) from None
        return scales

    def load_state_dict(
        self,
        state_dict: dict[str, Any],
        *,
        constants: Literal["check", "load", "keep"] = "check",
    ) -> None:
        """Load a state dict of this class or of :class:`torch.optim.Adam`.

        The groups of a state dict saved by this class carry the constants
        ``gain``, ``lr_mul`` and ``scale`` they trained with. ``constants`` sets
        what happens when those give a parameter another constant c than this
        optimizer's groups give it:

        * ``"check"`` (default): raise ValueError naming the first such parameter.
        * ``"load"``: continue with the state dict's constants.
        * ``"keep"``: continue with this optimizer's constants.

        A state dict of torch.optim.Adam carries no constants, so each group keeps
        the constants it had before the load, whatever ``constants`` is. The
        check runs before load_state_dict pre-hooks, on the dict as passed.

        .. note::
            The state of torch.optim.Adam over a runtime-scaled network contains
            moments in v-coordinates. It loads here without an error, but resumes
            on another trajectory. Convert it with
            :func:`~eqlr_optim.load_runtime_adam_state` instead.
        """
        if constants not in ("check", "load", "keep"):
            raise ValueError(
                f"constants must be 'check', 'load' or 'keep', got {constants!r}"
            )
        check_state_dict(self, state_dict)
        if constants == "check":
            self._check_saved_constants(state_dict["param_groups"])
        previous = [
            {key: group[key] for key in CONSTANT_KEYS} for group in self.param_groups
        ]
        super().load_state_dict(state_dict)
        for group, previous_constants in zip(self.param_groups, previous, strict=True):
            for key, value in previous_constants.items():
                if constants == "keep":
                    group[key] = value
                else:
                    group.setdefault(key, value)

    def _check_saved_constants(self, saved_groups: list[dict[str, Any]]) -> None:
        for g, (saved, group) in enumerate(
            zip(saved_groups, self.param_groups, strict=True)
        ):
            if not any(key in saved for key in CONSTANT_KEYS):
                continue
            current = [group[key] for key in CONSTANT_KEYS]
            loaded = [saved.get(key, group[key]) for key in CONSTANT_KEYS]
            names = group.get("param_names") or saved.get("param_names")
            for j, p in enumerate(group["params"]):
                current_scale = equalized_scale(p.shape, *current)
                loaded_scale = equalized_scale(p.shape, *loaded)
                if loaded_scale == current_scale:
                    continue
                where = (
                    f"parameter {names[j]!r}"
                    if names
                    else f"group {g}, parameter {j} of shape {tuple(p.shape)}"
                )
                raise ValueError(
                    f"the state dict gives {where} the constant c = {loaded_scale!r}, "
                    f"but this optimizer gives it c = {current_scale!r}; pass "
                    "constants='load' to continue with the state dict's constants, "
                    "or constants='keep' to continue with this optimizer's"
                )

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step.

        Args:
            closure: a callable that reevaluates the model and returns the loss.
        """
        self._accelerator_graph_capture_health_check()

        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        # Every group is checked and every constant computed before any state
        # changes, so an invalid value in one group leaves all groups untouched.
        for index, group in enumerate(self.param_groups):
            try:
                check_group_keys(group)
                check_group_values(group, read_tensors=False)
                # torch.compile traces every group with capturable=True, on any
                # device, so the device checks are skipped there as
                # torch.optim.Adam skips its own.
                if not torch.compiler.is_compiling():
                    check_step_tensors(group, self.state)
            except (ValueError, TypeError) as error:
                raise type(error)(f"param group {index}: {error}") from None
        group_scales = [
            self._group_scales(group, with_grad_only=True)
            for group in self.param_groups
        ]

        for group, scales in zip(self.param_groups, group_scales, strict=True):
            self._step_group(group, scales)

        return loss

    def _step_group(self, group: dict[str, Any], scales: list[float]) -> None:
        params: list[Tensor] = []
        grads: list[Tensor] = []
        exp_avgs: list[Tensor] = []
        exp_avg_sqs: list[Tensor] = []
        max_exp_avg_sqs: list[Tensor] = []
        state_steps: list[Tensor] = []
        has_complex = self._init_group(
            group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps
        )
        if not params:
            return

        lists = [params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps]
        # adam() raises for fused with differentiable, and it keeps the fused
        # kernel out of torch.compile's graphs, so both cases go through it.
        if (
            group["fused"]
            and not isinstance(group["lr"], Tensor)
            and not group["differentiable"]
            and not torch.compiler.is_compiling()
        ):
            self._fused_step(group, scales, lists)
            return

        # One kernel call per distinct constant, because each call takes a single
        # lr and eps. Most networks have only a few distinct constants.
        buckets = _bucket_by_scale(scales)
        beta1, beta2 = group["betas"]
        for c, indices in buckets.items():
            lr, eps, weight_decay = _group_hyperparameters(group, c)
            tensors = lists if len(buckets) == 1 else _select(lists, indices)
            bucket_params, bucket_grads, bucket_exp_avgs = tensors[:3]
            bucket_exp_avg_sqs, bucket_max_exp_avg_sqs, bucket_steps = tensors[3:]
            adam(
                bucket_params,
                bucket_grads,
                bucket_exp_avgs,
                bucket_exp_avg_sqs,
                bucket_max_exp_avg_sqs,
                bucket_steps,
                amsgrad=group["amsgrad"],
                has_complex=has_complex,
                beta1=beta1,
                beta2=beta2,
                lr=lr,
                weight_decay=weight_decay,
                eps=eps,
                maximize=group["maximize"],
                foreach=group["foreach"],
                capturable=group["capturable"],
                differentiable=group["differentiable"],
                fused=group["fused"],
                grad_scale=getattr(self, "grad_scale", None),
                found_inf=getattr(self, "found_inf", None),
                decoupled_weight_decay=group["decoupled_weight_decay"],
            )

    def _fused_step(
        self, group: dict[str, Any], scales: list[float], lists: list[list[Tensor]]
    ) -> None:
        """Call torch's fused Adam kernel once per device, dtype and constant.

        This is the bookkeeping of ``torch.optim.adam._fused_adam`` (group by
        device and dtype, count the step, undo the count of a skipped step), done
        once for the whole group. Going through ``adam()`` once per constant cost
        about 18 us of Python per call, measured with cProfile on a 2-core AMD EPYC
        CPU with torch 2.13, where the fused kernel call itself takes about 2 us.
        """
        grad_scale: Tensor | None = getattr(self, "grad_scale", None)
        found_inf: Tensor | None = getattr(self, "found_inf", None)
        kernel = (
            torch._fused_adamw_
            if group["decoupled_weight_decay"]
            else torch._fused_adam_
        )
        beta1, beta2 = group["betas"]
        grouped = Optimizer._group_tensors_by_device_and_dtype(
            cast(list[list[Tensor | None]], lists), with_indices=True
        )
        for (device, _), (device_lists_, indices) in grouped.items():
            device_lists = cast(list[list[Tensor]], device_lists_)
            device_grad_scale = (
                None if grad_scale is None else grad_scale.to(device, non_blocking=True)
            )
            device_found_inf = (
                None if found_inf is None else found_inf.to(device, non_blocking=True)
            )
            device_steps = device_lists[5]
            torch._foreach_add_(device_steps, 1)

            buckets = _bucket_by_scale([scales[i] for i in indices])
            for c, positions in buckets.items():
                lr, eps, weight_decay = _group_hyperparameters(group, c)
                tensors = _select(device_lists, positions)
                bucket_params, bucket_grads, bucket_exp_avgs = tensors[:3]
                bucket_exp_avg_sqs, bucket_max_exp_avg_sqs, bucket_steps = tensors[3:]
                kernel(
                    bucket_params,
                    bucket_grads,
                    bucket_exp_avgs,
                    bucket_exp_avg_sqs,
                    bucket_max_exp_avg_sqs,
                    bucket_steps,
                    amsgrad=group["amsgrad"],
                    lr=cast(float, lr),
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=weight_decay,
                    eps=eps,
                    maximize=group["maximize"],
                    grad_scale=device_grad_scale,
                    found_inf=device_found_inf,
                )
            if device_found_inf is not None:
                torch._foreach_sub_(
                    device_steps, [device_found_inf] * len(device_steps)
                )
