"""Rows per second of the hand-off's L = 1 stateful training step, measured side by side.

    python bench/speed.py [--rows N] [--fused-rows N] [--rss-rows N] [--compile]

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
from engine.signals import train_set  # noqa: E402
from engine.training.kernels import handoff as fk  # noqa: E402

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
    lstm, fc = model.lstm, model.fc
    params = [
        lstm.weight_ih_l0,
        lstm.weight_hh_l0,
        lstm.bias_ih_l0,
        lstm.bias_hh_l0,
        fc.weight,
        fc.bias,
    ]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1500, help="rows per plain-torch variant")
    ap.add_argument("--fused-rows", type=int, default=ROWS, help="rows for the fused backend")
    ap.add_argument("--rss-rows", type=int, default=200_000, help="rows for the RSS check")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=2000, help="rows per fused kernel call")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="add LSTMCell + torch.compile (about 75 s to compile)",
    )
    args = ap.parse_args()
    if not fk.AVAILABLE:
        sys.exit(f"fused backend unavailable: {fk.UNAVAILABLE_REASON}")

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
