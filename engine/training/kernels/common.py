"""What both fused kernels share: the numba guard, the one error a kernel raises when it
cannot run a setup, the checks of the model and of torch's Adam, numpy views on the
memory of the parameters and of Adam's state (the kernels update them in place), the
fused multiply-add both Adam loops use, and the one warm-up path (compile, or load from
numba's on-disk cache, once per process, and say which).

If numba cannot be imported, ``AVAILABLE`` is False and ``UNAVAILABLE_REASON`` says
why; every stepper then raises :class:`KernelUnavailable` and its trainer trains on torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

try:  # numba is optional: the torch backend is the always-available reference.
    from numba import njit, types
    from numba.extending import intrinsic

    AVAILABLE = True
    UNAVAILABLE_REASON: str | None = None
except ImportError as exc:  # pragma: no cover - exercised only without numba
    AVAILABLE = False
    UNAVAILABLE_REASON = f"numba is not installed ({exc}); use the torch backend"

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class KernelUnavailable(RuntimeError):
    """A fused kernel cannot run here (numba missing, or a setup whose arithmetic it does
    not implement); the trainer trains on torch and says why."""


if AVAILABLE:

    @intrinsic
    def fma(typingctx, a, b, c):  # noqa: ARG001 - numba's intrinsic signature
        """Single-rounding a * b + c (what torch's vectorised ``lerp_`` computes)."""
        if not (a == b == c and a in (types.float32, types.float64)):
            return None
        sig = a(a, a, a)

        def codegen(context, builder, signature, args):  # noqa: ARG001
            return builder.fma(*args)

        return sig, codegen

    @njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
    def adam_element(p, m, v, k, g, w1, b2, omb2, bc2s, eps, neg_ss):
        """torch's ``_single_tensor_adam`` on element k of p with gradient g, operation by
        operation (the first moment as the fused multiply-add of its vectorised lerp_)."""
        mk = fma(w1, g - m[k], m[k])  # exp_avg.lerp_(grad, 1 - beta1)
        vk = v[k] * b2 + omb2 * g * g  # exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
        denom = np.sqrt(vk) / bc2s + eps  # (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
        p[k] = p[k] + neg_ss * mk / denom  # param.addcdiv_(m, denom, -step_size)
        m[k] = mk
        v[k] = vk

    @njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
    def adam_step(steps, beta1, beta2, lr, cast):
        """Count one Adam step in the six tensors' float32 ``step`` (as torch keeps it)
        and set cast[0] = sqrt(1 - beta2^step), cast[1] = -lr / (1 - beta1^step): the
        bias corrections in float64, as torch computes them from the Python float step,
        rounded into the working dtype by the store."""
        step = steps[0][0] + np.float32(1.0)
        for q in range(6):
            steps[q][0] = step
        step64 = np.float64(step)
        bc1 = 1.0 - beta1**step64
        bc2 = 1.0 - beta2**step64
        cast[0] = bc2**0.5
        cast[1] = -(lr / bc1)


def require() -> None:
    if not AVAILABLE:
        raise KernelUnavailable(UNAVAILABLE_REASON)


def lstm_params(model: nn.Module, who: str) -> tuple[torch.Tensor, ...]:
    """The six parameter tensors of a FrequencyLSTM-shaped model (W_ih, W_hh, b_ih, b_hh,
    the head's weight and bias), checked for what the kernels implement: a one-layer,
    one-way LSTM with biases, a head Linear(H, 1), float32 or float64 CPU tensors."""
    lstm, fc = getattr(model, "lstm", None), getattr(model, "fc", None)
    if not isinstance(lstm, nn.LSTM) or not isinstance(fc, nn.Linear):
        raise KernelUnavailable(f"{who} needs model.lstm and model.fc")
    if lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size or not lstm.bias:
        raise KernelUnavailable(
            f"{who} supports a one-layer, one-way LSTM with biases "
            f"(got num_layers={lstm.num_layers}, bidirectional={lstm.bidirectional}, "
            f"proj_size={lstm.proj_size}, bias={lstm.bias})"
        )
    if fc.in_features != lstm.hidden_size or fc.out_features != 1 or fc.bias is None:
        raise KernelUnavailable(f"{who} supports a head Linear(H, 1)")
    params = (
        lstm.weight_ih_l0,
        lstm.weight_hh_l0,
        lstm.bias_ih_l0,
        lstm.bias_hh_l0,
        fc.weight,
        fc.bias,
    )
    dtype = params[0].dtype
    if dtype not in DTYPES or any(p.dtype != dtype for p in params):
        raise KernelUnavailable(f"{who} supports float32 or float64 parameters, got {dtype}")
    for p in params:
        flat_view(p, dtype, who)
    return params


def check_adam(
    optimizer: torch.optim.Optimizer, params: tuple[torch.Tensor, ...], who: str
) -> None:
    """The plain torch.optim.Adam over exactly `params`, as the kernels repeat it: one
    group, float hyper-parameters, no weight decay, amsgrad, maximize, foreach or fused."""
    opt = optimizer
    if type(opt) is not torch.optim.Adam:
        raise KernelUnavailable(f"{who} implements torch.optim.Adam only, got {type(opt).__name__}")
    if len(opt.param_groups) != 1:
        raise KernelUnavailable(f"{who} expects one Adam parameter group")
    group = opt.param_groups[0]
    if len(group["params"]) != 6 or {id(p) for p in group["params"]} != {id(p) for p in params}:
        raise KernelUnavailable(
            "the Adam group must hold exactly the model's six parameter tensors"
        )
    required = {
        "weight_decay": 0,
        "amsgrad": False,
        "maximize": False,
        "capturable": False,
        "differentiable": False,
        "decoupled_weight_decay": False,
        "foreach": None,
        "fused": None,
    }
    for key, ok in required.items():
        value = group.get(key, ok)
        if value != ok and not (key in ("foreach", "fused") and value is False):
            raise KernelUnavailable(f"{who} does not support Adam {key}={value!r}")
    for key in ("lr", "eps"):
        if isinstance(group[key], torch.Tensor):
            raise KernelUnavailable(f"{who} needs a float Adam {key}")
    if any(isinstance(b, torch.Tensor) for b in group["betas"]):
        raise KernelUnavailable(f"{who} needs float Adam betas")


def flat_view(t: torch.Tensor, dtype: torch.dtype, who: str) -> np.ndarray:
    """A writable numpy view sharing memory with ``t``."""
    if t.dtype != dtype or t.device.type != "cpu" or not t.is_contiguous():
        raise KernelUnavailable(
            f"{who} needs contiguous {dtype} CPU tensors, got {t.dtype} on {t.device.type}"
        )
    return t.detach().view(-1).numpy()


def adam_state_views(
    optimizer: torch.optim.Optimizer, params: tuple[torch.Tensor, ...], dtype: torch.dtype, who: str
) -> tuple[tuple, tuple, tuple]:
    """Views of Adam's state tensors (exp_avg, exp_avg_sq, step) for `params`, created as
    torch's Adam creates them if absent."""
    state = optimizer.state
    exp_avgs, exp_avg_sqs, steps = [], [], []
    for p in params:
        st = state[p]
        if len(st) == 0:
            st["step"] = torch.tensor(0.0, dtype=torch.float32)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        step = st["step"]
        if step.dtype != torch.float32 or step.numel() != 1:
            raise KernelUnavailable("Adam's step must be a float32 scalar tensor")
        exp_avgs.append(flat_view(st["exp_avg"], dtype, who))
        exp_avg_sqs.append(flat_view(st["exp_avg_sq"], dtype, who))
        steps.append(step.view(1).numpy())
    first = steps[0][0]
    if any(s[0] != first for s in steps):
        raise KernelUnavailable("Adam's step counts differ between the tensors")
    return tuple(exp_avgs), tuple(exp_avg_sqs), tuple(steps)


class Stepper:
    """What both kernels' steppers hold: the model's six parameter tensors (checked),
    their dtype and sizes, and the torch Adam over them (checked). A stepper copies no
    weights: every call takes fresh views of the current tensors, so a `load_state_dict`
    between calls is honoured. `who` names the kernel in its refusals."""

    who: ClassVar[str]

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        require()
        self.params = lstm_params(model, self.who)
        self.dtype = self.params[0].dtype
        self.np_dtype = DTYPES[self.dtype]
        self.hidden = model.lstm.hidden_size
        self.n_in = model.lstm.input_size
        self.optimizer = optimizer
        check_adam(optimizer, self.params, self.who)

    def param_views(self) -> tuple[np.ndarray, ...]:
        """Writable flat views of the six parameter tensors."""
        return tuple(flat_view(p, self.dtype, self.who) for p in self.params)

    def state_views(self) -> tuple[tuple, tuple, tuple]:
        """Views of Adam's state tensors, created as torch's Adam creates them if absent."""
        return adam_state_views(self.optimizer, self.params, self.dtype, self.who)


@dataclass(frozen=True)
class WarmUp:
    """How a kernel got into this process: how long it took and whether numba's on-disk
    cache served it."""

    seconds: float
    from_cache: bool


class Compiled:
    """A kernel's compiled functions and a call that runs them once on tiny arrays of the
    production types. The first `warm_up()` compiles them (several seconds in a fresh
    environment) or loads them from numba's cache (well under a second); every later one
    returns how that first load went (also when a first training call triggered it)."""

    def __init__(self, dummy_call: Callable[[], None], functions: Callable[[], tuple]) -> None:
        self._dummy_call = dummy_call
        self._functions = functions  # late: without numba the functions are not defined
        self._load: WarmUp | None = None

    def is_compiled(self) -> bool:
        """True once every function has a compiled specialisation in this process."""
        return AVAILABLE and all(f.signatures for f in self._functions())

    def warm_up(self) -> WarmUp:
        require()
        if self._load is None:
            t0 = time.perf_counter()
            self._dummy_call()
            seconds = time.perf_counter() - t0
            functions = self._functions()
            hits = sum(sum(f.stats.cache_hits.values()) for f in functions)
            misses = sum(sum(f.stats.cache_misses.values()) for f in functions)
            self._load = WarmUp(seconds=seconds, from_cache=hits > 0 and not misses)
        return self._load
