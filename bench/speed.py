"""Rows per second of the training steps, measured side by side.

    python bench/speed.py [--rows N] [--fused-rows N] [--rss-rows N] [--compile]
    python bench/speed.py --method clock [--rounds N] [--T 1000 10000]

`--method handoff` (the default) measures the hand-off's L = 1 step as described below;
`--method clock` measures the full-BPTT window step of the clock and tbptt (see
`clock_main`).

Every variant trains the spec's train rows (seed 1) in order from the same initial
weights, one optimizer step per row, (h, c) carried and detached. The variants take
turns in short rounds so that load from other processes on a shared machine falls on
all of them alike; the table gives the median round's rate (wall clock) and the rate per
CPU-second of this process. Then: the RSS growth of the process over 200,000 rows of
fused training, and where the fused backend's time goes (per-call overhead against time
inside the kernel, by block size); bench/profile_fused.py splits the kernel's own time
by section.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import RunConfig  # noqa: E402
from engine.model import FrequencyLSTM, build_model  # noqa: E402
from engine.signals import (  # noqa: E402
    fresh_signal_inputs,
    noise_generator,
    train_set,  # noqa: E402
)
from engine.training.kernels import handoff as fk  # noqa: E402
from engine.training.kernels import window as wk  # noqa: E402
from engine.training.kernels.common import AVAILABLE, UNAVAILABLE_REASON, lstm_params  # noqa: E402

CONFIG = RunConfig()
X_NP, Y_NP = train_set(CONFIG).rows()
X_T, Y_T = torch.from_numpy(X_NP), torch.from_numpy(Y_NP)
ROWS = len(X_NP)  # 40,000: one epoch


@dataclass
class Variant:
    name: str
    threads: int
    train: Callable[[int, int], None]  # train(start_row, n_rows)
    plain_torch: bool = True
    share: float = 1.0  # fraction of --rows this variant trains (a slow one trains fewer)
    wall: list[float] = field(default_factory=list)  # rows/s of each round
    cpu_s: float = 0.0
    rows: int = 0
    row: int = 0

    def run(self, n: int) -> None:
        torch.set_num_threads(self.threads)
        done = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        while done < n:  # wrap at the end of the epoch, as a second epoch would
            k = min(n - done, ROWS - self.row)
            self.train(self.row, k)
            self.row = (self.row + k) % ROWS
            done += k
        wall = time.perf_counter() - t0
        self.cpu_s += time.process_time() - cpu0
        self.rows += n
        self.wall.append(n / wall)

    @property
    def rate(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_rate(self) -> float:
        return self.rows / self.cpu_s


def fresh_model() -> FrequencyLSTM:
    return build_model(CONFIG)


# ---- the variants ------------------------------------------------------------------------
def handoff_reference(threads: int) -> Callable[[int, int], None]:
    """The hand-off's loop exactly: nn.LSTM, F.mse_loss, Adam(lr=1e-3), detach every row."""
    model = fresh_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = list(model.init_hidden(1))

    def train(start: int, n: int) -> None:
        h, c = state
        for r in range(start, start + n):
            y, (h, c) = model(X_T[r].view(1, 1, 5), (h, c))
            loss = F.mse_loss(y.view(1), Y_T[r : r + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
            h, c = h.detach(), c.detach()
        state[:] = [h, c]

    return train


def lstm_cell(adam: dict, compile_step: bool = False) -> Callable[[int, int], None]:
    """LSTMCell (no sequence machinery) + Linear, with a chosen Adam implementation."""
    ref = fresh_model()
    cell = nn.LSTMCell(5, 64)
    with torch.no_grad():
        for a, b in (
            (cell.weight_ih, ref.lstm.weight_ih_l0),
            (cell.weight_hh, ref.lstm.weight_hh_l0),
            (cell.bias_ih, ref.lstm.bias_ih_l0),
            (cell.bias_hh, ref.lstm.bias_hh_l0),
        ):
            a.copy_(b)
    fc = ref.fc
    opt = torch.optim.Adam([*cell.parameters(), *fc.parameters()], lr=1e-3, **adam)

    def forward(x, h, c, t):
        h, c = cell(x, (h, c))
        return F.mse_loss(fc(h).view(1), t), h, c

    def step() -> None:
        opt.step()

    if compile_step:
        forward = torch.compile(forward)
        step = torch.compile(step)
    state = [torch.zeros(1, 64), torch.zeros(1, 64)]

    def train(start: int, n: int) -> None:
        h, c = state
        for r in range(start, start + n):
            loss, h, c = forward(X_T[r].view(1, 5), h, c, Y_T[r : r + 1])
            opt.zero_grad()
            loss.backward()
            step()
            h, c = h.detach(), c.detach()
        state[:] = [h, c]

    return train


def manual_backward() -> Callable[[int, int], None]:
    """No autograd: the one-step gradients written out in torch ops, then fused Adam."""
    model = fresh_model()
    params = list(lstm_params(model, "the manual backward"))  # W_ih, W_hh, b_ih, b_hh, head
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    for p in params:
        p.grad = torch.zeros_like(p)
    g_wih, g_whh, g_bih, g_bhh, g_fw, g_fb = (p.grad for p in params)
    w_ih, w_hh, b_ih, b_hh, f_w, f_b = (p.detach() for p in params)
    state = [torch.zeros(64), torch.zeros(64)]

    @torch.no_grad()
    def train(start: int, n: int) -> None:
        h, c = state
        for r in range(start, start + n):
            x = X_T[r]
            gates = torch.addmv(b_ih, w_ih, x) + torch.addmv(b_hh, w_hh, h)
            i, f, g, o = gates.view(4, 64)
            i, f, o, g = i.sigmoid(), f.sigmoid(), o.sigmoid(), g.tanh()
            c_new = f * c + i * g
            tc = c_new.tanh()
            h_new = o * tc
            y = torch.dot(f_w[0], h_new) + f_b[0]
            dy = 2.0 * (y - Y_T[r])
            dh = dy * f_w[0]
            dc = dh * o * (1 - tc * tc)
            d = torch.cat(
                (
                    dc * g * i * (1 - i),
                    dc * c * f * (1 - f),
                    dc * i * (1 - g * g),
                    dh * tc * o * (1 - o),
                )
            )
            torch.outer(d, x, out=g_wih)
            torch.outer(d, h, out=g_whh)
            g_bih.copy_(d)
            g_bhh.copy_(d)
            torch.mul(h_new, dy, out=g_fw[0])
            g_fb.copy_(dy)
            opt.step()
            h, c = h_new, c_new
        state[:] = [h, c]

    return train


def fused(block: int) -> Callable[[int, int], None]:
    model = fresh_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stepper = fk.FusedStepper(model, opt)
    h, c = model.init_hidden(1)
    losses = np.empty(block, np.float32)
    outputs = np.empty(block, np.float32)

    def train(start: int, n: int) -> None:
        for s in range(start, start + n, block):
            e = min(s + block, start + n)
            stepper.train_block(X_NP[s:e], Y_NP[s:e], h, c, losses, outputs)

    return train


# ---- measurements ------------------------------------------------------------------------
def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def rss_growth(rows: int, block: int) -> tuple[float, float, float]:
    """RSS before and after `rows` rows of fused training (after one warm-up block)."""
    train = fused(block)
    train(0, block)
    gc.collect()
    before = rss_mb()
    done, row = 0, block
    t0 = time.perf_counter()
    while done < rows:
        k = min(block, rows - done, ROWS - row)
        train(row, k)
        row = (row + k) % ROWS
        done += k
    seconds = time.perf_counter() - t0
    gc.collect()
    return before, rss_mb(), seconds


def call_overhead(block_sizes: list[int]) -> list[tuple[int, float, float]]:
    """Per block size: µs per row through FusedStepper.train_block and through the raw kernel.

    Thread CPU time, the fastest of the repeats: on a shared machine wall time also holds
    other processes' turns on the core."""
    model = fresh_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stepper = fk.FusedStepper(model, opt)
    h, c = model.init_hidden(1)
    stepper.train_block(X_NP[:2], Y_NP[:2], h, c)
    # the raw kernel with every argument prepared once, as the wrapper prepares it per call
    group = opt.param_groups[0]
    params = tuple(p.detach().view(-1).numpy() for p in stepper.params)
    m, v, steps = stepper._state_views()
    h_np, c_np = h.view(-1).numpy(), c.view(-1).numpy()
    hyper = fk._hyper(0.9, 0.999, group["eps"], 0.0, np.float32)
    out = []
    for b in block_sizes:
        reps = max(5, 4000 // b)
        losses = np.empty(b, np.float32)
        outputs = np.empty(b, np.float32)
        wrapper, raw = [], []
        for k in range(reps):
            s = (k * b) % (ROWS - b)
            t0 = time.thread_time()
            stepper.train_block(X_NP[s : s + b], Y_NP[s : s + b], h, c, losses, outputs)
            t1 = time.thread_time()
            fk._train_block(
                X_NP[s : s + b],
                Y_NP[s : s + b],
                params,
                m,
                v,
                steps,
                h_np,
                c_np,
                losses,
                outputs,
                stepper._gate_means,
                stepper._ws,
                hyper,
                1e-3,
                0.9,
                0.999,
            )
            t2 = time.thread_time()
            wrapper.append((t1 - t0) / b)
            raw.append((t2 - t1) / b)
        out.append((b, min(wrapper) * 1e6, min(raw) * 1e6))
    return out


# ---- the clock's window step ---------------------------------------------------------------
def clock_window(T: int, draws: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A clock batch: F blocks x `draws` fresh noise draws of T rows, S at full amplitude."""
    F = CONFIG.n_blocks
    rng = noise_generator(1000)
    x = torch.zeros(draws, F, T, 1 + F)
    for d in range(draws):
        x[d, :, :, 0] = torch.from_numpy(fresh_signal_inputs(rng, CONFIG, T))
    for i in range(F):
        x[:, i, :, 1 + i] = 1.0
    targets = torch.from_numpy(np.array(train_set(CONFIG).targets[:, :T], dtype=np.float32))
    y = targets.unsqueeze(0).expand(draws, F, T)
    return x.reshape(draws * F, T, 1 + F).contiguous(), y.reshape(draws * F, T).contiguous()


@dataclass
class WindowVariant:
    name: str
    step: Callable[[], None]
    threads: int  # torch's intra-op threads while this variant runs
    kernel: bool
    wall: list[float] = field(default_factory=list)  # rows/s of each round
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per row, each round


def torch_window_step(x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """The plain torch window step: nn.LSTM forward from a zero state, MSE over all rows,
    backward through all T rows, clip_grad_norm_(1.0), Adam."""
    model = fresh_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        out, _ = model(x, model.init_hidden(x.shape[0]))
        loss = F.mse_loss(out[..., 0], y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def kernel_window_step(x: torch.Tensor, y: torch.Tensor, threads: int) -> Callable[[], None]:
    """The same step through the fused window kernel (coef 1/B: the same mean)."""
    model = fresh_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stepper = wk.WindowStepper(model, opt, threads=threads)
    coef = torch.full((x.shape[0],), 1.0 / x.shape[0])
    x_np, y_np, coef_np = x.numpy(), y.numpy(), coef.numpy()

    def step() -> None:
        stepper.step(x_np, y_np, coef_np, clip=1.0)

    return step


def clock_main(args: argparse.Namespace) -> None:
    """Plain torch (1 thread, default threads) against the fused window kernel (1 and 2
    threads) on the clock's step: B = 8 streams (4 blocks x 2 draws) x T rows.

    The variants take turns within each round (the order rotating every round) so that
    load from other processes falls on all of them alike; the table gives the median
    round's rows/s (wall clock) and the process CPU time per row."""
    if not AVAILABLE:
        sys.exit(f"window kernel unavailable: {UNAVAILABLE_REASON}")
    default_threads = torch.get_num_threads()
    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} (default "
        f"{default_threads} threads), load average {os.getloadavg()[0]:.2f} "
        f"(1 min) {os.getloadavg()[1]:.2f} (5 min)"
    )
    t0 = time.perf_counter()
    kernel_window_step(*clock_window(20), 1)()  # compile (or load from numba's cache)
    print(f"window kernel ready in {time.perf_counter() - t0:.1f} s (compile or cache load)")
    summary = []
    for T in args.T:
        x, y = clock_window(T)
        B = x.shape[0]
        variants = [
            WindowVariant("plain torch, 1 thread", torch_window_step(x, y), 1, False),
            WindowVariant(
                f"plain torch, default {default_threads} threads",
                torch_window_step(x, y),
                default_threads,
                False,
            ),
            WindowVariant("fused window kernel, 1 thread", kernel_window_step(x, y, 1), 1, True),
            WindowVariant("fused window kernel, 2 threads", kernel_window_step(x, y, 2), 1, True),
        ]
        steps = max(1, args.rows_per_turn // (B * T))
        for v in variants:  # warm-up: allocator pools, Adam's lazy state
            torch.set_num_threads(v.threads)
            v.step()
        load0 = os.getloadavg()[0]
        for r in range(args.rounds):
            for q in range(len(variants)):
                v = variants[(q + r) % len(variants)]
                torch.set_num_threads(v.threads)
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(steps):
                    v.step()
                wall = time.perf_counter() - w0
                v.wall.append(steps * B * T / wall)
                v.cpu.append((time.process_time() - c0) / (steps * B * T))
        torch.set_num_threads(default_threads)
        load1 = os.getloadavg()[0]
        best_torch = max(
            (v for v in variants if not v.kernel), key=lambda v: statistics.median(v.wall)
        )
        k1, k2 = variants[2], variants[3]
        w = max(len(v.name) for v in variants)
        print()
        print(
            f"B = {B}, T = {T:,}: {args.rounds} rounds of {steps} step(s) ({steps * B * T:,} rows) "
            f"per variant; load average {load0:.2f} before, {load1:.2f} after"
        )
        print(f"{'variant':<{w}}  {'rows/s':>10}  {'(min - max)':>21}  {'CPU µs/row':>10}")
        for v in variants:
            med = statistics.median(v.wall)
            print(
                f"{v.name:<{w}}  {med:>10,.0f}  ({min(v.wall):>9,.0f} - {max(v.wall):>9,.0f})  "
                f"{1e6 * statistics.median(v.cpu):>10.2f}"
            )
        r2 = statistics.median(k2.wall) / statistics.median(best_torch.wall)
        r1 = statistics.median(k1.wall) / statistics.median(best_torch.wall)
        r21 = statistics.median(k2.wall) / statistics.median(k1.wall)
        print(f"kernel 2 threads / best torch ({best_torch.name}): {r2:5.2f}x")
        print(f"kernel 1 thread  / best torch:                 {r1:5.2f}x")
        print(f"kernel 2 threads / kernel 1 thread:            {r21:5.2f}x")
        summary.append((T, r2, r21))
    print()
    for T, r2, r21 in summary:
        print(
            f"T = {T:>6,}: fused (2 threads) = {r2:.2f}x the best plain torch; 2 threads = {r21:.2f}x 1 thread"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--method",
        choices=("handoff", "clock"),
        default="handoff",
        help="handoff: the L = 1 step; clock: the full-BPTT window step (clock, tbptt)",
    )
    ap.add_argument("--T", type=int, nargs="+", default=[1000, 10_000], help="clock: window rows")
    ap.add_argument(
        "--rows-per-turn",
        type=int,
        default=80_000,
        help="clock: rows each variant trains per turn (whole steps, at least one)",
    )
    ap.add_argument("--rows", type=int, default=1500, help="rows per plain-torch variant")
    ap.add_argument("--fused-rows", type=int, default=ROWS, help="rows for the fused backend")
    ap.add_argument("--rss-rows", type=int, default=200_000, help="rows for the RSS check")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (3 handoff, 7 clock)")
    ap.add_argument("--block", type=int, default=2000, help="rows per fused kernel call")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="add LSTMCell + torch.compile (about 75 s to compile)",
    )
    args = ap.parse_args()
    if args.method == "clock":
        args.rounds = args.rounds or 7
        clock_main(args)
        return
    args.rounds = args.rounds or 3
    if not AVAILABLE:
        sys.exit(f"fused backend unavailable: {UNAVAILABLE_REASON}")

    default_threads = torch.get_num_threads()
    warm = fk.warm_up()
    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"(default {default_threads} threads), load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"fused kernel {'loaded from cache' if warm.from_cache else 'compiled'} "
        f"in {warm.seconds:.2f} s"
    )

    variants = [
        Variant("torch reference: the hand-off loop, 1 thread", 1, handoff_reference(1)),
        Variant(f"hand-off loop, torch default {default_threads} threads", default_threads, handoff_reference(default_threads), share=0.2),
        Variant("LSTMCell + Adam(foreach), 1 thread", 1, lstm_cell({"foreach": True})),
        Variant("LSTMCell + Adam(fused), 1 thread", 1, lstm_cell({"fused": True})),
        Variant("manual backward, no autograd + Adam(fused), 1 thread", 1, manual_backward()),
    ]  # fmt: skip
    if args.compile:
        t0 = time.perf_counter()
        train = lstm_cell({"foreach": False}, compile_step=True)
        torch.set_num_threads(1)
        train(0, 3)
        print(f"torch.compile warm-up: {time.perf_counter() - t0:.1f} s")
        variants.append(Variant("LSTMCell + Adam, torch.compile, 1 thread", 1, train))
    fused_v = Variant(
        f"fused (numba kernel, {args.block}-row blocks)", 1, fused(args.block), plain_torch=False
    )
    variants.append(fused_v)

    for v in variants:  # warm-up: allocator pools, lazy Adam state, first-call paths
        v.run(20)
        v.wall.clear()
        v.cpu_s, v.rows = 0.0, 0
    for _ in range(args.rounds):
        for v in variants:
            rows = args.fused_rows if v is fused_v else int(args.rows * v.share)
            v.run(max(1, rows // args.rounds))
    torch.set_num_threads(default_threads)

    ref = variants[0]  # 1 thread, as engine/run.py runs it: the reference's best case
    best = max((v for v in variants if v.plain_torch), key=lambda v: v.rate)
    w = max(len(v.name) for v in variants)
    print()
    print(
        f"{'variant':<{w}}  {'rows/s':>9}  {'rows/CPU-s':>10}  {'epoch (40k)':>11}  {'vs ref':>7}"
    )
    for v in variants:
        print(
            f"{v.name:<{w}}  {v.rate:>9,.0f}  {v.cpu_rate:>10,.0f}  "
            f"{ROWS / v.rate:>10.1f}s  {v.rate / ref.rate:>6.1f}x"
        )
    print()
    print(f"fused / torch reference:        {fused_v.rate / ref.rate:6.1f}x")
    print(f"fused / best plain PyTorch:     {fused_v.rate / best.rate:6.1f}x  ({best.name})")
    print(
        f"rows per round: torch variants {args.rows // args.rounds}, fused {args.fused_rows // args.rounds}; median of {args.rounds} rounds"
    )

    before, after, seconds = rss_growth(args.rss_rows, args.block)
    print()
    print(
        f"RSS over {args.rss_rows:,} rows of fused training: {before:.1f} MB -> {after:.1f} MB, "
        f"growth {after - before:+.2f} MB (goal < 5 MB); {args.rss_rows / seconds:,.0f} rows/s"
    )

    print()
    print("where fused's time goes: CPU cost per row by rows per call (fastest of repeats)")
    table = call_overhead([1, 10, 100, 1000, 10000])
    per_call = table[0][1] - table[0][2]  # at 1 row a call the difference is the wrapper
    print(
        f"wrapper per call (views of torch's tensors, checks, numba dispatch): {per_call:.1f} µs, "
        f"measured at 1 row per call"
    )
    print(f"{'rows/call':>9}  {'train_block':>12}  {'raw kernel':>11}  {'wrapper share':>13}")
    for b, wrap, raw in table:
        share = per_call / (per_call + b * raw)
        print(f"{b:>9}  {wrap:>9.2f} µs  {raw:>8.2f} µs  {100 * share:>12.1f}%")


if __name__ == "__main__":
    main()
