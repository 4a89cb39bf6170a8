"""Where the window kernel's time goes, section by section, measured inside the kernel.

    python bench/profile_window.py [--T 10000] [--streams 4] [--repeats 5]

Builds an instrumented copy of engine/training/kernels/window.py in memory: at every
section marker of `_part_pass` (a comment line starting with `# ---`) it reads the CPU's
time-stamp counter and charges the ticks since the previous marker to the section that
was running (markers inside the time loops split each row's work). The copy is compiled
fresh (nothing cached) and run on one part of the streams (one thread's share); the
production kernel is untouched. Each counter read costs a few ns, a few per row.
Also times the rest of a step: clip + Adam, and the wrapper (views, reduction, threads).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.model import FrequencyLSTM  # noqa: E402
from engine.training.kernels import window as wk  # noqa: E402

RDTSC = """
    from numba import njit, types  # the kernel module imports only what it uses
    from numba.extending import intrinsic

    @intrinsic
    def _rdtsc(typingctx):  # noqa: ARG001
        from llvmlite import ir as llir

        def codegen(context, builder, signature, args):  # noqa: ARG001
            fnty = llir.FunctionType(llir.IntType(64), [])
            fn = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=fnty)
            return builder.call(fn, [])

        return types.int64(), codegen

    @njit
    def _rdtsc_now():
        return _rdtsc()
"""

MARKER = re.compile(r"^(\s*)# -{3,}\s*(.*?)\s*-*$")


def instrumented() -> tuple[types.ModuleType, list[str], dict[int, str]]:
    """The kernel module with `_part_pass` instrumented.

    Top-level markers read the time-stamp counter (a few reads per call). Inside the
    time loops a counter read per row would cost more than the work here (the read
    traps in this VM), so a section marked "(matmul)" is instead made skippable
    (`skip` = its number); its cost is the time saved by skipping it.
    """
    src = (ROOT / "engine/training/kernels/window.py").read_text()
    src = src.replace("cache=True", "cache=False")
    src = src.replace("if AVAILABLE:\n", "if AVAILABLE:\n" + RDTSC, 1)
    head, sep, rest = src.partition("    def _part_pass(")
    body, sep2, tail = rest.partition("    # ---- clipping and Adam")
    if not sep or not sep2:
        raise SystemExit("no _part_pass in the kernel module: update this profiler")
    body = body.replace("g_uT, g_fc, one,\n    ):", "g_uT, g_fc, one, prof, skip,\n    ):", 1)
    lines = body.split("\n")
    out: list[str] = []
    names: list[str] = []
    inner: dict[int, str] = {}
    started = False
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m and len(m.group(1)) == 8:  # a top-level section: read the counter
            if not started:
                out += ["        _sec = 0", "        _t0 = _rdtsc()"]
                started = True
            out.append(
                f"        _t = _rdtsc(); prof[_sec] += _t - _t0; _t0 = _t; _sec = {len(names)}"
            )
            names.append(m.group(2))
        elif m and "(matmul)" in m.group(2):  # an inner section: make it skippable
            indent = m.group(1)
            number = 100 + len(inner)
            inner[number] = m.group(2)
            out.append(line)
            out.append(f"{indent}if skip != {number}:")
            i += 1
            while i < len(lines):
                nxt = lines[i]
                stripped = nxt.strip()
                depth = len(nxt) - len(nxt.lstrip())
                if stripped and (
                    depth < len(indent) or (MARKER.match(nxt) and depth == len(indent))
                ):
                    break
                out.append("    " + nxt if stripped else nxt)
                i += 1
            continue
        out.append(line)
        i += 1
    while out and not out[-1].strip():
        out.pop()
    out += ["        _t = _rdtsc(); prof[_sec] += _t - _t0", ""]
    if len(names) < 4 or len(inner) < 2:
        raise SystemExit("too few section markers found in the kernel: update this profiler")
    module = types.ModuleType("window_profiled")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    code = head + sep + "\n".join(out) + "\n" + sep2 + tail
    exec(compile(code, "window_profiled", "exec"), module.__dict__)  # noqa: S102
    return module, names, inner


def tsc_hz(mod: types.ModuleType, seconds: float = 0.2) -> float:
    """Ticks of the time-stamp counter per second (measured against perf_counter)."""
    mod._rdtsc_now()
    t0, c0 = time.perf_counter(), mod._rdtsc_now()
    while time.perf_counter() - t0 < seconds:
        pass
    return (mod._rdtsc_now() - c0) / (time.perf_counter() - t0)


def section_split(
    T: int = 10_000, streams: int = 4, hidden: int = 64, n_in: int = 5, repeats: int = 5
) -> tuple[list[tuple[str, float]], float]:
    """ns per row of each section of one part's pass (fastest repeat) and their total."""
    mod, names, inner = instrumented()
    dt = np.float32
    rng = np.random.default_rng(0)
    P, H, n_in = streams, hidden, n_in
    part = mod._Part(P, H, n_in, dt)
    G, C, TC, U, DY = part.views(T)
    x = rng.standard_normal((P, T, n_in)).astype(dt)
    y = rng.standard_normal((P, T)).astype(dt)
    coef = np.full(P, 1.0 / P, dt)
    h0 = np.zeros((P, H), dt)
    w_uT = (0.1 * rng.standard_normal((H + n_in + 1, 4 * H))).astype(dt)
    w_hh = np.ascontiguousarray(w_uT[:H].T)
    fc_w = (0.1 * rng.standard_normal(H)).astype(dt)
    fc_b = np.zeros(1, dt)
    out = np.empty((P, T), dt)
    lens = np.full(P, T, np.int64)  # every stream runs the whole window

    def run(skip: int) -> np.ndarray:
        prof = np.zeros(len(names) + 1, np.int64)
        c0 = time.thread_time_ns()
        mod._part_pass(
            x, y, coef, lens, h0, h0, w_uT, w_hh, fc_w, fc_b,
            G, C, TC, U, DY, part.acc, part.dh, part.dc, part.blk,
            out, part.online_loss, part.g_uT, part.g_fc, np.ones(1, dt), prof, skip,
        )  # fmt: skip
        prof[-1] = time.thread_time_ns() - c0  # this thread's CPU time, for the scale
        return prof

    run(-1)  # compiles
    best: dict[int, np.ndarray] = {}
    for _ in range(repeats):  # interleaved, so that load falls on all variants alike
        for skip in (-1, *inner):
            prof = run(skip)
            if skip not in best or prof[:-1].sum() < best[skip][:-1].sum():
                best[skip] = prof
    # The counter ticks in wall time, which on a loaded machine includes other processes'
    # turns on this core: the shares are the counter's, scaled to this thread's CPU time.
    hz = tsc_hz(mod)
    rows = P * T
    cpu_ns = float(best[-1][-1]) / rows
    scale = cpu_ns / (1e9 * float(best[-1][:-1].sum()) / hz / rows)
    hz /= scale
    ns = [1e9 * float(v) / hz / rows for v in best[-1][:-1]]
    split: list[tuple[str, float]] = []
    for q, name in enumerate(names):
        own = ns[q]
        parts = []
        for number, inner_name in inner.items():
            saved = 1e9 * float(best[-1][q] - best[number][q]) / hz / rows
            if saved > 0.01 * own and inner_name.split(":")[0] in name:
                parts.append((f"  {inner_name}", saved))
                own -= saved
        if parts:
            split.append((f"{name}: the rest", own))
            split.extend(parts)
        else:
            split.append((name, own))
    return split, sum(ns)


def step_split(T: int = 10_000, B: int = 8, repeats: int = 5) -> dict[str, float]:
    """Per step, ms: whole step at 1 thread, the parts' passes, clip + Adam (thread CPU)."""
    torch.manual_seed(0)
    model = FrequencyLSTM(5, 64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stepper = wk.WindowStepper(model, opt, threads=1)
    x = torch.randn(B, T, 5)
    y = torch.randn(B, T)
    coef = torch.full((B,), 1.0 / B)
    stepper.step(x, y, coef, clip=1.0)
    step_t, adam_t = [], []
    real_adam = wk._clip_and_adam

    def timed_adam(*a):
        t0 = time.thread_time()
        r = real_adam(*a)
        adam_t.append(time.thread_time() - t0)
        return r

    wk._clip_and_adam = timed_adam
    try:
        for _ in range(repeats):
            t0 = time.thread_time()
            stepper.step(x, y, coef, clip=1.0)
            step_t.append(time.thread_time() - t0)
    finally:
        wk._clip_and_adam = real_adam
    return {"step": 1e3 * min(step_t), "clip + Adam": 1e3 * min(adam_t)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=10_000)
    ap.add_argument("--streams", type=int, default=4, help="streams in the part (B / 2)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    split, total = section_split(args.T, args.streams, repeats=args.repeats)
    flop = 3 * 2 * 4 * 64 * (64 + 5 + 1)  # three (4H x K) multiply-adds per row
    print(f"one part: {args.streams} streams x {args.T} rows, float32, H = 64, one thread")
    print(f"{'section':<52} {'ns/row':>8} {'share':>6}")
    for name, ns in split:
        print(f"{name:<52} {ns:>8.1f} {100 * ns / total:>5.1f}%")
    print(f"{'total':<52} {total:>8.1f}   ({1e9 / total:,.0f} rows/s on one core;")
    print(f"{'':<52} {'':>8}    matmul work {flop / total:.1f} GFLOP/s overall)")
    s = step_split(args.T)
    print(
        f"whole step, B = 8, 1 thread: {s['step']:.1f} ms CPU, of which clip + Adam "
        f"{s['clip + Adam']:.2f} ms"
    )


if __name__ == "__main__":
    main()
