"""Fused full-BPTT window step: LSTM forward over T rows for B streams, backward through
all T rows, the linear head, clipping by total norm and torch's Adam, compiled with numba.

One call of :meth:`WindowStepper.step` does what this torch code does (the clock's and
tbptt's step), in place on the model's own parameter tensors and on ``torch.optim.Adam``'s
own state tensors (``exp_avg``, ``exp_avg_sq``, ``step``), so ``optimizer.state_dict()``,
snapshots and frozen evaluation read the same numbers::

    out = fc(lstm(x, (h0, c0)))[..., 0]                              # (B, T)
    loss = sum_b coef[b] * mean_t (out - y)**2 + s_decay * sum_j W_ih[j, 0]**2
    loss.backward(); clip_grad_norm_(params, clip) if clip > 0; adam.step()

How the time is spent, and why the code is shaped as it is (bench/profile_window.py
splits it by section; at H = 64 about four fifths of it is the three multiply-add
loops, the rest element-wise gate arithmetic):

- the input of row t is u_t = [h_{t-1}, x_t, 1], so one loop gives the gate
  pre-activations u_t W_u^T (W_u^T = [W_hh^T; W_ih^T; b_ih + b_hh]) and one loop after
  the time loop gives all weight gradients, sum_t u_t^T dg_t;
- the sequential work per row is u_t W_u^T (forward) and dg_t W_hh (backward) for the
  streams of a part. Both take eight rows of W times four streams per pass of an inner
  loop over the contiguous output columns, so each weight is loaded once for four
  streams and each accumulator once per eight multiply-adds;
- the gate activations, c, tanh(c) and u_t of every row are kept from the forward pass;
  the backward pass overwrites the activations with the gate gradients. The weight
  gradient loop takes eight rows per pass in tiles that keep the accumulator in L1, and
  sums blocks of 64 rows before adding them to the total (two-level summation keeps
  float32 rounding near a blocked GEMM's, far below a running sum's);
- exp (for sigmoid and tanh) is an inline range reduction and polynomial that the
  compiler vectorises (libm's exp is a scalar call): about one ulp in float32, about
  1e-16 relative in float64 (the float64 tests pin torch to 1e-9). Element-wise loops
  index slices by the loop variable only and touch few arrays each: that is what lets
  the compiler vectorise them;
- ``fastmath={"contract"}`` only: multiply-adds fuse into FMAs, nothing is reassociated;
- the B streams are split into fixed parts (at most two), each part's pass is one
  ``nogil`` call; with two threads the parts run concurrently. The per-part gradients
  are summed in a fixed order, so the result does not depend on the number of threads,
  only on B (bitwise, which keeps exact resume);
- Adam repeats torch's ``_single_tensor_adam`` operation by operation (first moment as
  the fused multiply-add of torch's vectorised ``lerp_``; bias corrections in float64).

Workspaces are allocated per part for the largest T seen and reused: memory is bounded by
the longest window, about (7H + I + 1) * B * T values (72 MB at B = 8, T = 10,000,
H = 64 in float32), about what autograd keeps for the same step.

What the two kernels share (the numba guard, the checks of the model and of Adam, the
views on torch's memory, the fused multiply-add, the warm-up) is in ``common.py``. If
numba cannot be imported :class:`WindowStepper` raises
:class:`~engine.training.kernels.common.KernelUnavailable`; so does any setup whose
arithmetic this kernel does not implement (more layers, another optimizer, amsgrad,
weight decay ...): fall back to torch.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.training.kernels.common import AVAILABLE, Compiled, KernelUnavailable, Stepper

if AVAILABLE:
    from numba import njit, types
    from numba.extending import intrinsic, overload

    from engine.training.kernels.common import adam_element, adam_step

PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "fc.weight", "fc.bias")
MAX_PARTS = 2  # the streams are split into at most this many parts (one per core here)


WHO = "the window kernel"  # how its refusals name it


@dataclass(frozen=True)
class WindowResult:
    """What one :meth:`WindowStepper.step` did.

    ``online_loss[b]`` is stream b's mean squared error over its window and ``outputs``
    the model output of every row, both measured before the update (online). ``h``, ``c`` (B, H)
    are the state after the last row. ``grad_norm`` is the total gradient norm before
    clipping. ``updated`` is False only when the loss was not finite: then the weights and
    Adam's state are untouched (``grad_norm`` is nan).
    """

    online_loss: np.ndarray
    outputs: np.ndarray
    h: torch.Tensor
    c: torch.Tensor
    grad_norm: float
    updated: bool


if AVAILABLE:

    @intrinsic
    def _from_bits(typingctx, i):  # noqa: ARG001
        """Reinterpret an int32 as float32 or an int64 as float64 (vectorisable)."""
        if i == types.int32:
            sig = types.float32(i)
        elif i == types.int64:
            sig = types.float64(i)
        else:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    def _exp(x):  # pragma: no cover - replaced by the overload below inside numba
        raise NotImplementedError

    @overload(_exp, inline="always", jit_options={"fastmath": {"contract"}})
    def _exp_impl(x):
        """exp without a libm call: n = round(x / ln2), r = x - n ln2, exp(r) by a
        polynomial, times 2^n built from its bits. Inputs are clamped to the finite range
        (so exp(-large) is tiny, not 0; it only ever feeds 1 / (1 + e))."""
        if x == types.float32:
            lo32, hi32 = np.float32(-87.0), np.float32(88.0)
            l2e32, c1_32, c2_32 = (
                np.float32(1.44269504),
                np.float32(0.693359375),
                np.float32(-2.12194440e-4),
            )
            p32 = tuple(
                np.float32(v)
                for v in (
                    1.9875691500e-4,
                    1.3981999507e-3,
                    8.3334519073e-3,
                    4.1665795894e-2,
                    1.6666665459e-1,
                    5.0000001201e-1,
                )
            )
            half32, one32 = np.float32(0.5), np.float32(1.0)

            def impl32(x):
                x = min(max(x, lo32), hi32)
                n = np.floor(x * l2e32 + half32)
                r = (x - n * c1_32) - n * c2_32
                p = p32[0]
                p = p * r + p32[1]
                p = p * r + p32[2]
                p = p * r + p32[3]
                p = p * r + p32[4]
                p = p * r + p32[5]
                p = (p * r) * r + r + one32
                return p * _from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))

            return impl32
        if x == types.float64:
            lo64, hi64 = -708.0, 709.0
            l2e64, c1_64, c2_64 = 1.4426950408889634, 6.93145751953125e-1, 1.42860682030941723212e-6
            # Taylor coefficients 1/k!, k = 13 .. 2: |r| <= ln2/2 leaves < 1e-17 relative
            p64 = tuple(1.0 / math.factorial(k) for k in range(13, 1, -1))  # 12 values

            def impl64(x):
                x = min(max(x, lo64), hi64)
                n = np.floor(x * l2e64 + 0.5)
                r = (x - n * c1_64) - n * c2_64
                p = p64[0]
                p = p * r + p64[1]
                p = p * r + p64[2]
                p = p * r + p64[3]
                p = p * r + p64[4]
                p = p * r + p64[5]
                p = p * r + p64[6]
                p = p * r + p64[7]
                p = p * r + p64[8]
                p = p * r + p64[9]
                p = p * r + p64[10]
                p = p * r + p64[11]
                p = (p * r) * r + r + 1.0
                return p * _from_bits(np.int64((np.int64(n) + np.int64(1023)) << np.int64(52)))

            return impl64
        return None

    # ---- the two matmuls' main loop, shared by the forward and the backward pass -------
    @njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy", inline="always")
    def _mac8(A, W, out, na, K8):
        """out[b] += sum_{k < K8} A[b, k] W[k] for the streams b < na, K8 a multiple of 8.

        Eight rows of W times four streams per pass of the inner loop, which then loads
        each weight once for four streams and each accumulator once per eight
        multiply-adds; then the streams left over, one at a time. The forward pass runs it
        as u_t W_u^T, the backward as dg_t W_hh; each adds its own tail rows (k >= K8).
        """
        N = W.shape[1]
        P4 = na - na % 4
        for k in range(0, K8, 8):
            w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
            w4, w5, w6, w7 = W[k + 4], W[k + 5], W[k + 6], W[k + 7]
            for b in range(0, P4, 4):
                u0, u1, u2, u3 = A[b], A[b + 1], A[b + 2], A[b + 3]
                a00, a01, a02, a03 = u0[k], u0[k + 1], u0[k + 2], u0[k + 3]
                a04, a05, a06, a07 = u0[k + 4], u0[k + 5], u0[k + 6], u0[k + 7]
                a10, a11, a12, a13 = u1[k], u1[k + 1], u1[k + 2], u1[k + 3]
                a14, a15, a16, a17 = u1[k + 4], u1[k + 5], u1[k + 6], u1[k + 7]
                a20, a21, a22, a23 = u2[k], u2[k + 1], u2[k + 2], u2[k + 3]
                a24, a25, a26, a27 = u2[k + 4], u2[k + 5], u2[k + 6], u2[k + 7]
                a30, a31, a32, a33 = u3[k], u3[k + 1], u3[k + 2], u3[k + 3]
                a34, a35, a36, a37 = u3[k + 4], u3[k + 5], u3[k + 6], u3[k + 7]
                c0, c1, c2, c3 = out[b], out[b + 1], out[b + 2], out[b + 3]
                for j in range(N):
                    x0, x1, x2, x3 = w0[j], w1[j], w2[j], w3[j]
                    x4, x5, x6, x7 = w4[j], w5[j], w6[j], w7[j]
                    c0[j] = (
                        c0[j] + a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
                        + a04 * x4 + a05 * x5 + a06 * x6 + a07 * x7
                    )  # fmt: skip
                    c1[j] = (
                        c1[j] + a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
                        + a14 * x4 + a15 * x5 + a16 * x6 + a17 * x7
                    )  # fmt: skip
                    c2[j] = (
                        c2[j] + a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
                        + a24 * x4 + a25 * x5 + a26 * x6 + a27 * x7
                    )  # fmt: skip
                    c3[j] = (
                        c3[j] + a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
                        + a34 * x4 + a35 * x5 + a36 * x6 + a37 * x7
                    )  # fmt: skip
            for b in range(P4, na):
                u0 = A[b]
                a00, a01, a02, a03 = u0[k], u0[k + 1], u0[k + 2], u0[k + 3]
                a04, a05, a06, a07 = u0[k + 4], u0[k + 5], u0[k + 6], u0[k + 7]
                c0 = out[b]
                for j in range(N):
                    c0[j] = (
                        c0[j] + a00 * w0[j] + a01 * w1[j] + a02 * w2[j] + a03 * w3[j]
                        + a04 * w4[j] + a05 * w5[j] + a06 * w6[j] + a07 * w7[j]
                    )  # fmt: skip

    # ---- the forward and backward pass of one part of the streams ---------------------
    @njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
    def _part_pass(
        x, y, coef, lens, h0, c0, w_uT, w_hh, fc_w, fc_b,
        G, C, TC, U, DY, acc, dh, dc, blk,
        out, online_loss, g_uT, g_fc, one,
    ):  # fmt: skip
        """Forward over T rows, online error, backward through all T rows, weight grads.

        x (P, T, I), y (P, T), coef (P,), h0/c0 (P, H) for the P streams of this part;
        lens (P,) each stream's window, non-increasing, lens[0] = T: stream b runs (and is
        charged) its first lens[b] rows only, so at row t the active streams are a prefix.
        The input of row t is u_t = [h_{t-1}, x_t, 1] (K = H + I + 1 values), so that one
        loop computes the gate pre-activations u_t W_u^T with w_uT = [W_hh^T; W_ih^T;
        b_ih + b_hh] (K, 4H), and one loop their weight gradient sum_t u_t^T dg_t.
        w_hh (4H, H) as is, for the backward recurrence.
        Workspaces: G (T, P, 4H) gate activations, then gate gradients; C (T+1, P, H) the
        cell states (C[0] = c0); TC (T, P, H) tanh(c); U (T+1, P, K) the inputs u_t
        (U[t, :, :H] = h_{t-1}); DY (T, P) dLoss/dout; acc (P, 4H); dh and dc
        (P, H); blk (16, 4H), the weight gradient's block accumulator.
        Outputs: out (P, T) the head's output, online_loss (P,) float64 (each stream's
        mean squared error before the update), g_uT (K, 4H) = [dW_hh^T; dW_ih^T; db] and
        g_fc (H + 1,) float64 (head weight, bias); overwritten.
        """
        P, T, n_in = x.shape
        T = lens[0]
        H = h0.shape[1]
        K = H + n_in + 1
        G4 = 4 * H
        one_ = one[0]
        two = one_ + one_
        zero = one_ - one_
        K4 = K - K % 4
        K8 = K - K % 8
        J8 = G4 - G4 % 8
        KH4 = H - H % 4

        # ---------------- inputs u_t = [h_{t-1}, x_t, 1] ----------------
        for t in range(T + 1):
            for b in range(P):
                u = U[t, b]
                if t == 0:
                    for k in range(H):
                        u[k] = h0[b, k]
                        C[0, b, k] = c0[b, k]
                if t < T:
                    for k in range(n_in):
                        u[H + k] = x[b, t, k]
                else:
                    for k in range(n_in):
                        u[H + k] = zero
                u[K - 1] = one_

        # ---------------- forward ----------------
        na = P  # streams still inside their window at row t (a prefix: lens non-increasing)
        for t in range(T):
            while na > 0 and lens[na - 1] <= t:
                na -= 1
            # --- forward: u_t W_u^T (matmul)
            # acc = u_t W_u^T: eight rows of W_u^T times four streams per pass of the
            # inner loop, which then loads each weight once for four streams and each
            # accumulator once per eight multiply-adds; then quads, then single rows
            for b in range(na):
                ab = acc[b]
                for j in range(G4):
                    ab[j] = zero
            _mac8(U[t], w_uT, acc, na, K8)
            for k in range(K8, K4, 4):
                w0 = w_uT[k]
                w1 = w_uT[k + 1]
                w2 = w_uT[k + 2]
                w3 = w_uT[k + 3]
                for b in range(na):
                    u0 = U[t, b]
                    a00, a01, a02, a03 = u0[k], u0[k + 1], u0[k + 2], u0[k + 3]
                    c0 = acc[b]
                    for j in range(G4):
                        c0[j] = c0[j] + a00 * w0[j] + a01 * w1[j] + a02 * w2[j] + a03 * w3[j]
            for k in range(K4, K):
                wk = w_uT[k]
                for b in range(na):
                    a0 = U[t, b, k]
                    ab = acc[b]
                    for j in range(G4):
                        ab[j] = ab[j] + a0 * wk[j]
            # --- forward: gates, c, tanh(c), h
            for b in range(na):
                g = G[t, b]
                ab = acc[b]
                # slices indexed by the loop variable only: this is what lets the
                # compiler vectorise (an index like H + j carries a negative-index check)
                zi, zf, zg, zo = ab[0:H], ab[H : 2 * H], ab[2 * H : 3 * H], ab[3 * H : G4]
                gi, gf, gg, go = g[0:H], g[H : 2 * H], g[2 * H : 3 * H], g[3 * H : G4]
                for j in range(H):
                    gi[j] = one_ / (one_ + _exp(-zi[j]))
                    gf[j] = one_ / (one_ + _exp(-zf[j]))
                    gg[j] = one_ - two / (_exp(zg[j] + zg[j]) + one_)
                    go[j] = one_ / (one_ + _exp(-zo[j]))
                cp = C[t, b]
                cn = C[t + 1, b]
                for j in range(H):
                    cn[j] = gf[j] * cp[j] + gi[j] * gg[j]
                tcn = TC[t, b]
                for j in range(H):
                    tcn[j] = one_ - two / (_exp(cn[j] + cn[j]) + one_)
                hn = U[t + 1, b, 0:H]
                for j in range(H):
                    hn[j] = go[j] * tcn[j]
            # past its window a stream's h is 0: the weight-gradient loop reads it (times
            # a zero gate gradient), so it must be finite
            for b in range(na, P):
                for j in range(H):
                    U[t + 1, b, j] = zero

        # ---------------- head, online error, dLoss/dout, head gradient ----------------
        fb = fc_b[0]
        for k in range(H + 1):
            g_fc[k] = 0.0
        for b in range(P):
            s = 0.0
            Tb = lens[b]
            w = coef[b] * two / Tb
            for t in range(Tb, T):
                out[b, t] = zero
                DY[t, b] = zero
            for t in range(Tb):
                hv = U[t + 1, b, 0:H]
                s0 = zero
                s1 = zero
                s2 = zero
                s3 = zero
                for k in range(0, KH4, 4):
                    s0 += fc_w[k] * hv[k]
                    s1 += fc_w[k + 1] * hv[k + 1]
                    s2 += fc_w[k + 2] * hv[k + 2]
                    s3 += fc_w[k + 3] * hv[k + 3]
                for k in range(KH4, H):
                    s0 += fc_w[k] * hv[k]
                o = fb + ((s0 + s1) + (s2 + s3))
                out[b, t] = o
                d = o - y[b, t]
                s += np.float64(d) * np.float64(d)
                dy = w * d
                DY[t, b] = dy
                dy = np.float64(DY[t, b])
                for k in range(H):
                    g_fc[k] = g_fc[k] + dy * np.float64(hv[k])
                g_fc[H] = g_fc[H] + dy
            online_loss[b] = s / Tb

        # ---------------- backward through time ----------------
        for b in range(P):
            for k in range(H):
                dh[b, k] = zero
                dc[b, k] = zero
        for t in range(T - 1, -1, -1):
            na = P
            while na > 0 and lens[na - 1] <= t:
                na -= 1
            # --- backward: gate gradients
            # written over the activations in G, one gate per loop: loops that touch
            # few arrays are the ones the compiler vectorises
            for b in range(na):
                g = G[t, b]
                gi, gf, gg, go = g[0:H], g[H : 2 * H], g[2 * H : 3 * H], g[3 * H : G4]
                cp = C[t, b]
                tcn = TC[t, b]
                dy = DY[t, b]
                dhb = dh[b]
                dcb = dc[b]
                for j in range(H):
                    dhb[j] = dy * fc_w[j] + dhb[j]
                for j in range(H):
                    tc = tcn[j]
                    og = go[j]
                    dcb[j] = dhb[j] * og * (one_ - tc * tc) + dcb[j]
                    go[j] = dhb[j] * tc * og * (one_ - og)
                for j in range(H):
                    ig = gi[j]
                    gv = gg[j]
                    gg[j] = dcb[j] * ig * (one_ - gv * gv)
                    gi[j] = dcb[j] * gv * ig * (one_ - ig)
                for j in range(H):
                    fg = gf[j]
                    gf[j] = dcb[j] * cp[j] * fg * (one_ - fg)
                    dcb[j] = dcb[j] * fg
            # past its window a stream has no gate gradient (the weight-gradient loop
            # reads every row)
            for b in range(na, P):
                for j in range(G4):
                    G[t, b, j] = zero
            if t == 0:
                break
            # --- backward: dgates W_hh (matmul)
            # eight rows of W_hh times four streams per pass (the inner loop is only H
            # long here, so the more work per pass the better)
            for b in range(na):
                for k in range(H):
                    dh[b, k] = zero
            _mac8(G[t], w_hh, dh, na, J8)
            for j in range(J8, G4):  # 4H = 4 (mod 8) when H is odd
                wj = w_hh[j]
                for b in range(na):
                    a0 = G[t, b, j]
                    c0 = dh[b]
                    for k in range(H):
                        c0[k] = c0[k] + a0 * wj[k]

        # ---------------- weight gradients over all (t, b) rows ----------------
        # g_u^T = sum_n u_n dg_n^T: the loop has the forward's shape (inner loop over the
        # 4H contiguous columns, eight rows n at a time). Blocks of NB rows are summed
        # into blk (a tile of KT rows of g_u^T stays in L1), then added to the total:
        # two-level summation keeps float32 rounding near a blocked GEMM's.
        N = T * P
        Gf = G.reshape(N, G4)
        Uf = U.reshape((T + 1) * P, K)
        for k in range(K):
            for j in range(G4):
                g_uT[k, j] = zero
        NB = 64
        KT = 16
        for n0 in range(0, N, NB):
            n1 = min(N, n0 + NB)
            q1 = n0 + (n1 - n0) // 8 * 8
            for k0 in range(0, K, KT):
                k1 = min(K, k0 + KT)
                for k in range(k0, k1):
                    bk = blk[k - k0]
                    for j in range(G4):
                        bk[j] = zero
                for n in range(n0, q1, 8):
                    # eight rows n per pass: blk is loaded and stored once per eight
                    # multiply-adds (several rows of blk per pass measure slower: the
                    # compiler then gives up vectorising)
                    d0 = Gf[n]
                    d1 = Gf[n + 1]
                    d2 = Gf[n + 2]
                    d3 = Gf[n + 3]
                    d4 = Gf[n + 4]
                    d5 = Gf[n + 5]
                    d6 = Gf[n + 6]
                    d7 = Gf[n + 7]
                    v0 = Uf[n]
                    v1 = Uf[n + 1]
                    v2 = Uf[n + 2]
                    v3 = Uf[n + 3]
                    v4 = Uf[n + 4]
                    v5 = Uf[n + 5]
                    v6 = Uf[n + 6]
                    v7 = Uf[n + 7]
                    for k in range(k0, k1):
                        a0, a1, a2, a3 = v0[k], v1[k], v2[k], v3[k]
                        a4, a5, a6, a7 = v4[k], v5[k], v6[k], v7[k]
                        bk = blk[k - k0]
                        for j in range(G4):
                            bk[j] = (
                                bk[j] + a0 * d0[j] + a1 * d1[j] + a2 * d2[j] + a3 * d3[j]
                                + a4 * d4[j] + a5 * d5[j] + a6 * d6[j] + a7 * d7[j]
                            )  # fmt: skip
                for n in range(q1, n1):
                    d0 = Gf[n]
                    for k in range(k0, k1):
                        a0 = Uf[n, k]
                        bk = blk[k - k0]
                        for j in range(G4):
                            bk[j] = bk[j] + a0 * d0[j]
                for k in range(k0, k1):
                    bk = blk[k - k0]
                    gk = g_uT[k]
                    for j in range(G4):
                        gk[j] = gk[j] + bk[j]

    # ---- clipping and Adam, on the summed gradients -----------------------------------
    @njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
    def _adam_tensor(p, m, v, g, scale, w1, b2, omb2, bc2s, eps, neg_ss):
        """torch's _single_tensor_adam on one flat tensor, after grad.mul_(scale)."""
        for k in range(p.shape[0]):
            adam_element(p, m, v, k, g[k] * scale, w1, b2, omb2, bc2s, eps, neg_ss)

    @njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
    def _clip_and_adam(params, grads, exp_avgs, exp_avg_sqs, steps, hyper, lr, beta1, beta2):
        """Total-norm clipping (``clip_grad_norm_``) and one Adam step on six tensors.

        hyper (working dtype): 1 - beta1, beta2, 1 - beta2, eps, max_norm (<= 0: off),
        1e-6, 1, and two cast slots. Returns the total norm before clipping (float64).
        """
        w1 = hyper[0]
        b2 = hyper[1]
        omb2 = hyper[2]
        eps = hyper[3]
        max_norm = hyper[4]
        clip_eps = hyper[5]
        one = hyper[6]
        cast = hyper[7:9]
        sq = 0.0
        for q in range(6):
            s = 0.0
            g = grads[q]
            for k in range(g.shape[0]):
                s += np.float64(g[k]) * np.float64(g[k])
            sq += s
        total = np.sqrt(sq)
        scale = one
        if max_norm > 0:
            cast[0] = total
            coef = max_norm / (cast[0] + clip_eps)
            if coef < one:
                scale = coef
        adam_step(steps, beta1, beta2, lr, cast)
        for q in range(6):
            _adam_tensor(
                params[q], exp_avgs[q], exp_avg_sqs[q], grads[q], scale,
                w1, b2, omb2, cast[0], eps, cast[1],
            )  # fmt: skip
        return total


class _Part:
    """Workspaces of one part of the streams, grown to the longest window seen."""

    def __init__(self, streams: int, hidden: int, n_in: int, dtype: type) -> None:
        self.streams, self.hidden, self.n_in, self.dtype = streams, hidden, n_in, dtype
        self.capacity = 0
        g4 = 4 * hidden
        self.acc = np.zeros((streams, g4), dtype)
        self.dh = np.zeros((streams, hidden), dtype)
        self.dc = np.zeros((streams, hidden), dtype)
        self.blk = np.zeros((16, g4), dtype)
        self.g_uT = np.zeros((hidden + n_in + 1, g4), dtype)
        self.g_fc = np.zeros(hidden + 1, np.float64)
        self.online_loss = np.zeros(streams, np.float64)

    def views(self, T: int) -> tuple[np.ndarray, ...]:
        if self.capacity < T:
            P, H, dt = self.streams, self.hidden, self.dtype
            self._G = np.empty((T, P, 4 * H), dt)
            self._C = np.empty((T + 1, P, H), dt)
            self._TC = np.empty((T, P, H), dt)
            self._U = np.empty((T + 1, P, H + self.n_in + 1), dt)
            self._DY = np.empty((T, P), dt)
            self.capacity = T
        return self._G[:T], self._C[: T + 1], self._TC[:T], self._U[: T + 1], self._DY[:T]


class WindowStepper(Stepper):
    """One full-BPTT training step per call on a FrequencyLSTM-shaped model + torch Adam.

    ``param.grad`` is not written (the gradients live in the stepper's own buffers; see
    :attr:`grads`); the step's total gradient norm is in the result.

    ``model`` has ``lstm`` (a one-layer, one-way ``nn.LSTM`` with biases, batch_first)
    and ``fc`` (``nn.Linear(H, 1)``); ``optimizer`` is the plain ``torch.optim.Adam`` over
    exactly those six parameters (float lr, no weight decay, amsgrad, maximize, foreach or
    fused). The stepper copies no weights between calls: every step reads the current
    tensors, so a ``load_state_dict`` between steps is honoured. float32 is the
    production dtype; float64 works too (the tests use it to pin the arithmetic).
    ``threads`` (1 or more) run the parts of the streams concurrently; the result does
    not depend on it.
    """

    who = WHO

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, threads: int = 2):
        super().__init__(model, optimizer)
        if not model.lstm.batch_first:
            raise KernelUnavailable(f"{WHO} expects a batch_first LSTM")
        if model.lstm.training and model.lstm.dropout:
            raise KernelUnavailable(f"{WHO} does not implement dropout")
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = int(threads)
        self._pool: ThreadPoolExecutor | None = None
        self._parts: dict[tuple[int, ...], list[_Part]] = {}  # by the parts' sizes
        H, n_in = self.hidden, self.n_in
        dt = self.np_dtype
        self._w_uT = np.empty((H + n_in + 1, 4 * H), dt)  # [W_hh^T; W_ih^T; b_ih + b_hh]
        self._grads = (
            np.zeros(4 * H * n_in, dt),
            np.zeros(4 * H * H, dt),
            np.zeros(4 * H, dt),
            np.zeros(4 * H, dt),
            np.zeros(H, dt),
            np.zeros(1, dt),
        )
        self._one = np.ones(1, dt)
        self._lock = threading.Lock()

    # ---- the step ---------------------------------------------------------------------
    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The last step's gradient before clipping, by parameter name, shaped as the
        parameter (copies). Includes the s_decay term."""
        return {
            n: g.reshape(p.shape).copy()
            for n, g, p in zip(PARAM_NAMES, self._grads, self.params, strict=True)
        }

    def _parts_for(self, sizes: tuple[int, ...]) -> list[_Part]:
        if sizes not in self._parts:
            self._parts[sizes] = [_Part(n, self.hidden, self.n_in, self.np_dtype) for n in sizes]
        return self._parts[sizes]

    @staticmethod
    def _split(lens: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        """The order of the streams and the size of each part. Equal windows: the streams
        in order, in parts of B // n (+1). Unequal: longest first, each stream to the part
        with the fewest rows so far (the parts then take about the same time), every part
        non-increasing in length as the pass needs. Depends on the lengths only, never on
        the thread count, so results stay bitwise the same with 1 or 2 threads."""
        B = len(lens)
        n = min(MAX_PARTS, B)
        if np.all(lens == lens[0]):
            return np.arange(B), tuple(B // n + (1 if q < B % n else 0) for q in range(n))
        order = np.argsort(-lens, kind="stable")
        members: list[list[int]] = [[] for _ in range(n)]
        load = [0] * n
        for b in order:
            q = min(range(n), key=lambda i: (load[i], i))
            members[q].append(int(b))
            load[q] += int(lens[b])
        members = [m for m in members if m]
        return np.array([b for m in members for b in m]), tuple(len(m) for m in members)

    def _as_array(self, a, shape: tuple[int, ...], name: str) -> np.ndarray:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a, dtype=self.np_dtype)
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
        return a

    def step(
        self,
        x,
        y,
        coef,
        h0=None,
        c0=None,
        clip: float = 0.0,
        s_decay: float = 0.0,
        lengths=None,
    ) -> WindowResult:
        """One training step on the window x (B, T, n_in) -> y (B, T), weighted by coef (B,).

        ``lengths`` (B,) ints in [1, T] give each stream a window of its own: stream b is
        run, and its error averaged, over its first lengths[b] rows only (the loss is
        sum_b coef[b] * mean_{t < lengths[b]} (out - y)**2; its outputs beyond are 0 and
        its final state is the one after its own last row); default T for all.
        h0, c0 (B, H), or (1, B, H) as nn.LSTM takes them, default to zeros. clip > 0
        clips the total gradient norm as ``clip_grad_norm_`` does; s_decay adds
        s_decay * sum(W_ih[:, 0]**2) to the loss. Arrays or tensors are accepted.
        """
        with self._lock:
            return self._step(x, y, coef, h0, c0, float(clip), float(s_decay), lengths)

    def _step(self, x, y, coef, h0, c0, clip: float, s_decay: float, lengths) -> WindowResult:
        dt = self.np_dtype
        H, n_in = self.hidden, self.n_in
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
        if x.ndim != 3 or x.shape[2] != n_in or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x must have shape (B, T, {n_in}) with B, T >= 1, got {x.shape}")
        B, T = x.shape[0], x.shape[1]
        x = self._as_array(x, (B, T, n_in), "x")
        y = self._as_array(y, (B, T), "y")
        coef = self._as_array(coef, (B,), "coef")
        if np.any(coef < 0) or not np.all(np.isfinite(coef)):
            raise ValueError("coef must be finite and nonnegative")
        zeros = np.zeros((B, H), dt)
        h0 = zeros if h0 is None else self._as_array(np.reshape(_np(h0), (-1, H)), (B, H), "h0")
        c0 = zeros if c0 is None else self._as_array(np.reshape(_np(c0), (-1, H)), (B, H), "c0")
        if clip < 0 or not math.isfinite(clip) or s_decay < 0 or not math.isfinite(s_decay):
            raise ValueError("clip and s_decay must be finite and >= 0")
        lens = np.full(B, T, np.int64) if lengths is None else np.asarray(_np(lengths), np.int64)
        if lens.shape != (B,) or np.any(lens < 1) or np.any(lens > T):
            raise ValueError(f"lengths must be (B,) = ({B},) ints in [1, {T}]")
        order, sizes = self._split(lens)
        reordered = not np.array_equal(order, np.arange(B))
        if reordered:
            x, y, coef, h0, c0, lens = (
                np.ascontiguousarray(a[order]) for a in (x, y, coef, h0, c0, lens)
            )

        exp_avgs, exp_avg_sqs, steps = self.state_views()
        params = self.param_views()
        w_ih = params[0].reshape(4 * H, n_in)
        w_hh = params[1].reshape(4 * H, H)
        np.copyto(self._w_uT[:H], w_hh.T)
        np.copyto(self._w_uT[H : H + n_in], w_ih.T)
        np.add(params[2], params[3], out=self._w_uT[H + n_in])

        parts = self._parts_for(sizes)
        outputs = np.zeros((B, T), dt)  # a stream shorter than T outputs 0 past its window
        hT = torch.empty((B, H), dtype=self.dtype)
        cT = torch.empty((B, H), dtype=self.dtype)
        hT_np, cT_np = hT.numpy(), cT.numpy()
        bounds = []
        b0 = 0
        for part in parts:
            bounds.append((b0, b0 + part.streams))
            b0 += part.streams

        def run(q: int) -> None:
            part = parts[q]
            lo, hi = bounds[q]
            G, C, TC, U, DY = part.views(int(lens[lo]))  # the part's longest window
            _part_pass(
                x[lo:hi], y[lo:hi], coef[lo:hi], lens[lo:hi], h0[lo:hi], c0[lo:hi],
                self._w_uT, w_hh, params[4], params[5],
                G, C, TC, U, DY, part.acc, part.dh, part.dc, part.blk,
                outputs[lo:hi], part.online_loss, part.g_uT, part.g_fc, self._one,
            )  # fmt: skip
            for b in range(lo, hi):  # each stream's state after its own last row
                hT_np[b] = U[lens[b], b - lo, :H]
                cT_np[b] = C[lens[b], b - lo]

        if self.threads > 1 and len(parts) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=min(self.threads, MAX_PARTS) - 1, thread_name_prefix="window"
                )
            futures = [self._pool.submit(run, q) for q in range(1, len(parts))]
            run(0)
            for f in futures:
                f.result()
        else:
            for q in range(len(parts)):
                run(q)

        online_loss = np.concatenate([p.online_loss for p in parts])
        if reordered:  # back to the caller's order
            back = np.argsort(order)
            online_loss, outputs = online_loss[back], outputs[back]
            hT, cT = hT[torch.from_numpy(back)], cT[torch.from_numpy(back)]
        if not np.all(np.isfinite(online_loss)):
            return WindowResult(online_loss, outputs, hT, cT, float("nan"), False)

        # sum the parts' gradients in a fixed order
        g_ih, g_hh, g_bih, g_bhh, g_fw, g_fb = self._grads
        g_uT = parts[0].g_uT.copy()
        g_fc = parts[0].g_fc.copy()
        for part in parts[1:]:
            g_uT += part.g_uT
            g_fc += part.g_fc
        g_ih2 = g_ih.reshape(4 * H, n_in)
        g_hh.reshape(4 * H, H)[:] = g_uT[:H].T
        g_ih2[:] = g_uT[H : H + n_in].T
        g_bih[:] = g_uT[H + n_in]
        g_fw[:] = g_fc[:H]
        g_fb[:] = g_fc[H:]
        g_bhh[:] = g_bih
        if s_decay > 0:
            # d/dW (s_decay * sum W[:, 0]**2) = s_decay * (2 * W[:, 0]), in torch's order
            g_ih2[:, 0] += dt(s_decay) * (dt(2.0) * w_ih[:, 0])

        group = self.optimizer.param_groups[0]
        beta1, beta2 = (float(b) for b in group["betas"])
        hyper = np.array(
            (1.0 - beta1, beta2, 1.0 - beta2, float(group["eps"]), clip, 1e-6, 1.0, 0.0, 0.0),
            dtype=dt,
        )
        norm = _clip_and_adam(
            params, self._grads, exp_avgs, exp_avg_sqs, steps, hyper,
            float(group["lr"]), beta1, beta2,
        )  # fmt: skip
        return WindowResult(online_loss, outputs, hT, cT, float(norm), True)

    # ---- copies (a trainer that holds a stepper is deep-copied by the state check) ----
    def __getstate__(self) -> dict:
        """Everything but the worker thread, the lock and the workspaces, which a copy
        makes afresh; the parameters and the optimizer are copied with the rest (a deep
        copy of model, optimizer and stepper together stays consistent)."""
        d = self.__dict__.copy()
        d["_pool"] = None
        d["_parts"] = {}
        del d["_lock"]
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the worker thread (also happens when the stepper is collected)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


class _Tiny(nn.Module):
    """The smallest FrequencyLSTM-shaped model: the warm-up's throwaway."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 2, batch_first=True)
        self.fc = nn.Linear(2, 1)


def _dummy_call() -> None:
    """One step on tiny arrays of exactly the production types (float32, two parts)."""
    model = _Tiny()
    stepper = WindowStepper(model, torch.optim.Adam(model.parameters(), lr=0.0), threads=1)
    x = np.zeros((2, 3, 3), dtype=np.float32)
    stepper.step(x, np.zeros((2, 3), np.float32), np.full(2, 0.5), clip=1.0, s_decay=1e-3)
    stepper.close()


KERNEL = Compiled(_dummy_call, lambda: (_part_pass, _clip_and_adam))
is_compiled, warm_up = KERNEL.is_compiled, KERNEL.warm_up
