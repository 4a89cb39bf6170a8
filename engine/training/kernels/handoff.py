"""Fused L = 1 stateful training step: LSTM cell, linear head, one-step gradients,
optional clipping and Adam, compiled with numba and run over a block of rows per call.

The hand-off's trainer spends about 2 ms a row in PyTorch eager on roughly 0.1 MFLOP
of arithmetic (SPEC §4): the time goes to dispatch, autograd bookkeeping and the
optimizer's Python loop, not to the arithmetic. This module does the same arithmetic
in one compiled loop over a block of rows, in place on the memory of the model's own
parameter tensors and of ``torch.optim.Adam``'s own state tensors (``exp_avg``,
``exp_avg_sq``, ``step``), so ``optimizer.state_dict()``, snapshots, frozen
evaluation and the console all read the same numbers.

Faithfulness: the Adam update repeats torch's ``_single_tensor_adam`` operation by
operation in float32 (bias corrections in float64, as torch computes them from the
Python float ``step``); the first moment uses a fused multiply-add as torch's
vectorised ``lerp_`` does. The forward and backward passes agree with autograd up
to summation order (a few ulp per row); in float64 the two agree to 1e-11 after 1,000
rows. ``param.grad`` is not written: every gradient of one L = 1 step is an outer
product, formed where Adam consumes it (W_ih's in a preallocated workspace).

Compiled with ``fastmath=False`` (no reassociation, so the arithmetic stays torch's)
and ``error_model="numpy"`` (IEEE division without Python's zero check, which is what
lets the Adam loops vectorise). ``nogil=True``: the console's thread runs meanwhile.

What the two kernels share (the numba guard, the checks of the model and of Adam, the
views on torch's memory, the fused multiply-add, the warm-up) is in ``common.py``; where
numba is missing or a setup is not implemented, :class:`FusedStepper` raises
:class:`~engine.training.kernels.common.KernelUnavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.training.kernels.common import AVAILABLE, Compiled, Stepper

if AVAILABLE:
    from numba import njit

    from engine.training.kernels.common import adam_element, adam_step

WHO = "the fused backend"  # how its refusals name it


@dataclass(frozen=True)
class FusedBlock:
    """What one :meth:`FusedStepper.train_block` call did.

    ``losses[:rows]`` and ``outputs[:rows]`` are the online loss and the model output of
    each row trained, each measured before that row's update. ``rows`` is less than the
    rows given only when a row's online loss was not finite: that row's figures are at
    index ``rows`` and it changed nothing.
    """

    rows: int
    losses: np.ndarray
    outputs: np.ndarray

    @property
    def diverged(self) -> bool:
        return self.rows < len(self.losses)


if AVAILABLE:

    @njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
    def _dot(w, v, lanes):
        """w . v in a fixed order: eight lanes over k, then a pairwise sum of the lanes.

        Eight independent partial sums let the compiler use one vector register
        without fast-math; the order is deterministic, only different from BLAS's.
        """
        n = w.shape[0]
        for q in range(8):
            lanes[q] = 0.0
        k = 0
        while k + 8 <= n:
            for q in range(8):
                lanes[q] += w[k + q] * v[k + q]
            k += 8
        s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + (
            (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
        )
        while k < n:
            s += w[k] * v[k]
            k += 1
        return s

    @njit(cache=True, fastmath=False, nogil=True, error_model="numpy", inline="always")
    def _adam_outer(p, m, v, a, src, scale, clip, w1, b2, omb2, bc2s, eps, neg_ss):
        """Adam on p with grad[k] = a * src[k] (times the clip scale), torch's order.

        Every gradient of one L = 1 step is such an outer product (a bias's row is
        dpre times 1, exactly), so no gradient buffer is ever written.
        """
        if clip:
            for k in range(p.shape[0]):
                adam_element(p, m, v, k, a * src[k] * scale, w1, b2, omb2, bc2s, eps, neg_ss)
        else:
            for k in range(p.shape[0]):
                adam_element(p, m, v, k, a * src[k], w1, b2, omb2, bc2s, eps, neg_ss)

    @njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
    def _train_block(
        x,
        target,
        params,
        exp_avgs,
        exp_avg_sqs,
        steps,
        h,
        c,
        losses,
        outputs,
        gate_means,
        ws,
        hyper,
        lr,
        beta1,
        beta2,
    ):
        """Train on rows x[0:n] in order, one step per row, everything in place.

        Returns the number of rows trained: n, or the index of the first row whose
        online loss is not finite (that row's loss is recorded, nothing is updated and
        h, c keep the state before it).

        params / exp_avgs / exp_avg_sqs: flat views, in the order (weight_ih,
        weight_hh, bias_ih, bias_hh, fc.weight, fc.bias); steps: six one-element
        float32 views of Adam's ``step`` tensors. h, c (H,): the carried state, left
        holding the state after the last row. losses[r], outputs[r]: online loss and model
        output of row r, before that row's update. gate_means: mean i, f, g, o gate of the last row.
        hyper (in the parameters' dtype): 1 - beta1, beta2, 1 - beta2, eps, max_norm
        (<= 0: no clipping), then the constants 0, 1, 2, 1e-6. lr, beta1, beta2 as
        Python floats for the float64 bias corrections, as torch computes them.
        """
        n = x.shape[0]
        n_in = x.shape[1]
        hid = h.shape[0]
        g4 = 4 * hid
        w_ih = params[0]
        w_hh = params[1]
        b_ih = params[2]
        b_hh = params[3]
        fc_w = params[4]
        fc_b = params[5]

        w1 = hyper[0]
        b2 = hyper[1]
        omb2 = hyper[2]
        eps = hyper[3]
        max_norm = hyper[4]
        zero = hyper[5]
        one = hyper[6]
        two = hyper[7]
        clip_eps = hyper[8]
        clip = max_norm > zero

        # Workspace views: nothing is allocated inside the row loop.
        pre = ws[0:g4]  # gate pre-activations
        act = ws[g4 : 2 * g4]  # gate activations i, f, g, o
        dpre = ws[2 * g4 : 3 * g4]  # dL / d pre-activation
        hh_next = ws[3 * g4 : 4 * g4]  # updated W_hh . h_new, the next row's recurrence
        tanh_c = ws[4 * g4 : 4 * g4 + hid]
        h_prev = ws[4 * g4 + hid : 4 * g4 + 2 * hid]
        # W_ih's gradient is materialised (4H x n_in): its rows are too short for a
        # vector loop, the flat array is not. 1 * grad is exact, so Adam sees torch's grad.
        g_ih = ws[4 * g4 + 2 * hid : 4 * g4 + 2 * hid + g4 * n_in]
        lanes = ws[ws.shape[0] - 10 : ws.shape[0] - 2]  # the dot products' partial sums
        cast = ws[ws.shape[0] - 2 :]  # rounds a float64 into the working dtype

        have_hh_next = False
        for r in range(n):
            xr = x[r]
            # ---- forward: pre = (W_ih x + b_ih) + (W_hh h + b_hh) ----
            for j in range(g4):
                a = b_ih[j]
                for k in range(n_in):
                    a += w_ih[j * n_in + k] * xr[k]
                if have_hh_next:
                    hh = hh_next[j] + b_hh[j]
                else:
                    hh = _dot(w_hh[j * hid : (j + 1) * hid], h, lanes) + b_hh[j]
                pre[j] = a + hh
            # ---- gate activations ----
            for j in range(hid):
                act[j] = one / (one + np.exp(-pre[j]))
                act[hid + j] = one / (one + np.exp(-pre[hid + j]))
                act[2 * hid + j] = np.tanh(pre[2 * hid + j])
                act[3 * hid + j] = one / (one + np.exp(-pre[3 * hid + j]))
            # ---- cell, hidden state, head and online loss ----
            y = fc_b[0]
            for k in range(hid):
                h_prev[k] = h[k]
                cn = act[hid + k] * c[k] + act[k] * act[2 * hid + k]
                tc = np.tanh(cn)
                tanh_c[k] = tc
                hn = act[3 * hid + k] * tc
                h[k] = hn  # c keeps c_prev until the backward below has used it
                y += fc_w[k] * hn
            diff = y - target[r]
            loss = diff * diff
            losses[r] = loss
            outputs[r] = y
            if not np.isfinite(loss):
                for k in range(hid):
                    h[k] = h_prev[k]
                return r

            # ---- backward of one step; h, c enter as constants ----
            dy = two * diff
            for k in range(hid):
                dh = dy * fc_w[k]
                ig = act[k]
                fg = act[hid + k]
                gg = act[2 * hid + k]
                og = act[3 * hid + k]
                tc = tanh_c[k]
                do = dh * tc
                dc = (dh * og) * (one - tc * tc)
                dpre[k] = dc * gg * (one - ig) * ig
                dpre[hid + k] = dc * c[k] * (one - fg) * fg
                dpre[2 * hid + k] = dc * ig * (one - gg * gg)
                dpre[3 * hid + k] = do * (one - og) * og
                c[k] = fg * c[k] + ig * gg

            # ---- optional clipping by the total norm; outer-product norms factorise ----
            scale = one
            if clip:
                sd = zero
                for j in range(g4):
                    sd += dpre[j] * dpre[j]
                sx = zero
                for k in range(n_in):
                    sx += xr[k] * xr[k]
                sh = zero
                sn = zero
                for k in range(hid):
                    sh += h_prev[k] * h_prev[k]
                    sn += h[k] * h[k]
                total_sq = sd * (sx + sh + two) + dy * dy * (sn + one)
                coef = max_norm / (np.sqrt(total_sq) + clip_eps)
                if coef < one:
                    scale = coef

            # ---- Adam's step and bias corrections, in float64 as torch computes them ----
            adam_step(steps, beta1, beta2, lr, cast)
            bc2s = cast[0]
            neg_ss = cast[1]

            # ---- Adam on W_hh, row by row, and the next row's W_hh . h ----
            m = exp_avgs[1]
            v = exp_avg_sqs[1]
            last = r == n - 1
            for j in range(g4):
                lo = j * hid
                hi = lo + hid
                row = w_hh[lo:hi]
                _adam_outer(
                    row, m[lo:hi], v[lo:hi], dpre[j], h_prev, scale, clip,
                    w1, b2, omb2, bc2s, eps, neg_ss,
                )  # fmt: skip
                # While the row is in L1: the next row's recurrence W_hh . h.
                if not last:
                    hh_next[j] = _dot(row, h, lanes)
            have_hh_next = not last

            # ---- Adam on W_ih, both biases and the head ----
            for j in range(g4):
                dj = dpre[j]
                for k in range(n_in):
                    g_ih[j * n_in + k] = dj * xr[k]
            _adam_outer(
                w_ih, exp_avgs[0], exp_avg_sqs[0], one, g_ih, scale, clip,
                w1, b2, omb2, bc2s, eps, neg_ss,
            )  # fmt: skip
            for q in (2, 3):
                _adam_outer(
                    params[q], exp_avgs[q], exp_avg_sqs[q], one, dpre, scale, clip,
                    w1, b2, omb2, bc2s, eps, neg_ss,
                )  # fmt: skip
            _adam_outer(
                fc_w, exp_avgs[4], exp_avg_sqs[4], dy, h, scale, clip,
                w1, b2, omb2, bc2s, eps, neg_ss,
            )  # fmt: skip
            cast[0] = dy
            _adam_outer(
                fc_b, exp_avgs[5], exp_avg_sqs[5], one, cast[0:1], scale, clip,
                w1, b2, omb2, bc2s, eps, neg_ss,
            )  # fmt: skip

        if n > 0:
            for q in range(4):
                s = zero
                for k in range(hid):
                    s += act[q * hid + k]
                gate_means[q] = s / hid
        return n


def _workspace_size(hidden: int, n_in: int) -> int:
    """Four vectors of 4H, two of H, W_ih's gradient, eight dot lanes, two cast slots."""
    return 4 * 4 * hidden + 2 * hidden + 4 * hidden * n_in + 10


def _hyper(beta1: float, beta2: float, eps: float, max_norm: float, dtype: type) -> np.ndarray:
    """Adam's float constants rounded into the working dtype as torch rounds them."""
    values = (1.0 - beta1, beta2, 1.0 - beta2, eps, max_norm, 0.0, 1.0, 2.0, 1e-6)
    return np.array(values, dtype=dtype)


def _dummy_call(dtype: type = np.float32, hidden: int = 8, n_in: int = 5) -> None:
    """Run the kernel once on tiny arrays of exactly the production types."""
    g4 = 4 * hidden
    shapes = (g4 * n_in, g4 * hidden, g4, g4, hidden, 1)
    params = tuple(np.zeros(s, dtype) for s in shapes)
    m = tuple(np.zeros(s, dtype) for s in shapes)
    v = tuple(np.zeros(s, dtype) for s in shapes)
    steps = tuple(np.zeros(1, np.float32) for _ in shapes)
    _train_block(
        np.zeros((2, n_in), dtype),
        np.zeros(2, dtype),
        params,
        m,
        v,
        steps,
        np.zeros(hidden, dtype),
        np.zeros(hidden, dtype),
        np.zeros(2, dtype),
        np.zeros(2, dtype),
        np.zeros(4, dtype),
        np.zeros(_workspace_size(hidden, n_in), dtype),
        _hyper(0.9, 0.999, 1e-8, 0.0, dtype),
        1e-3,
        0.9,
        0.999,
    )


KERNEL = Compiled(_dummy_call, lambda: (_train_block,))
is_compiled, warm_up = KERNEL.is_compiled, KERNEL.warm_up


class FusedStepper(Stepper):
    """Runs the hand-off's per-row step for blocks of rows on a model + torch Adam.

    ``model`` has ``lstm`` (a one-layer ``nn.LSTM``) and ``fc`` (``nn.Linear(H, 1)``);
    ``optimizer`` is the ``torch.optim.Adam`` over exactly those six parameters. The
    stepper holds no copy of either: every call takes fresh numpy views of the current
    tensors, so a ``load_state_dict`` between calls is honoured. float32 is the
    production dtype; float64 works too (the tests use it to check the arithmetic).
    ``max_norm`` clips the gradient by total norm like ``clip_grad_norm_``; None or 0
    turns clipping off (the hand-off's method).
    """

    who = WHO

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        max_norm: float | None = None,
    ) -> None:
        super().__init__(model, optimizer)
        self.max_norm = float(max_norm) if max_norm else 0.0
        self._ws = np.zeros(_workspace_size(self.hidden, self.n_in), self.np_dtype)
        self._gate_means = np.zeros(4, self.np_dtype)

    @property
    def gate_means(self) -> tuple[float, float, float, float]:
        """Mean input, forget, cell and output gate of the last row trained."""
        i, f, g, o = self._gate_means.tolist()
        return i, f, g, o

    def train_block(
        self,
        x: np.ndarray,
        target: np.ndarray,
        h: torch.Tensor,
        c: torch.Tensor,
        losses: np.ndarray | None = None,
        outputs: np.ndarray | None = None,
    ) -> FusedBlock:
        """Train on the rows ``x`` (n, 5) → ``target`` (n,) in order, one step per row.

        ``h`` and ``c`` (contiguous, H values each, the parameters' dtype) are read as
        the carried state and overwritten with the state after the last row trained.
        ``losses`` and ``outputs`` (n,) may be given to reuse buffers across calls.
        Training stops before updating on a row whose online loss is not finite.
        """
        warm_up()  # once: so that a later warm_up() can still say what the first load cost
        dt = self.np_dtype
        x = np.ascontiguousarray(x, dtype=dt)
        target = np.ascontiguousarray(target, dtype=dt).reshape(-1)
        n = x.shape[0]
        if x.ndim != 2 or x.shape[1] != self.n_in or target.shape[0] != n:
            raise ValueError(f"expected x of shape (n, {self.n_in}) and target of shape (n,)")
        losses = np.empty(n, dt) if losses is None else losses[:n]
        outputs = np.empty(n, dt) if outputs is None else outputs[:n]
        group = self.optimizer.param_groups[0]
        beta1, beta2 = (float(b) for b in group["betas"])
        exp_avgs, exp_avg_sqs, steps = self.state_views()
        params = self.param_views()
        h_np, c_np = _state_view(h, self.dtype), _state_view(c, self.dtype)
        if h_np.shape[0] != self.hidden or c_np.shape[0] != self.hidden:
            raise ValueError(f"h and c must hold {self.hidden} values each")
        done = _train_block(
            x,
            target,
            params,
            exp_avgs,
            exp_avg_sqs,
            steps,
            h_np,
            c_np,
            losses,
            outputs,
            self._gate_means,
            self._ws,
            _hyper(beta1, beta2, float(group["eps"]), self.max_norm, dt),
            float(group["lr"]),
            beta1,
            beta2,
        )
        return FusedBlock(int(done), losses, outputs)


def _state_view(t: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    if t.dtype != dtype or not t.is_contiguous() or t.requires_grad:
        raise ValueError(f"h and c must be contiguous {dtype} tensors without grad")
    return t.view(-1).numpy()
