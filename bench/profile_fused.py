"""Where the fused kernel's time goes, section by section, measured inside the kernel.

    python bench/profile_fused.py [--rows N]

Builds an instrumented copy of engine/training/kernels/handoff.py in memory: at every
section header of the row loop (the `# ---- ...` comments) it reads the CPU's time-stamp
counter and charges the ticks since the previous header to the section that ended. The
copy is compiled fresh (nothing is cached) and trained on the spec's train rows; the
production kernel is untouched. The counter reads themselves cost a few ns each.
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

from engine.config import RunConfig  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.signals import train_set  # noqa: E402

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
"""


def instrumented() -> tuple[types.ModuleType, list[str]]:
    src = (ROOT / "engine/training/kernels/handoff.py").read_text()
    src = src.replace("cache=True", "cache=False")
    src = src.replace("if AVAILABLE:\n", "if AVAILABLE:\n" + RDTSC, 1)
    head, sep, body = src.partition("    def _train_block(")
    if not sep:
        raise SystemExit("no _train_block in the kernel module: update this profiler")
    body = body.replace("        beta2,\n    ):", "        beta2,\n        prof,\n    ):", 1)
    lines = body.split("\n")
    out, names, in_loop = [], [], False
    for line in lines:
        stripped = line.strip()
        if line.startswith("        for r in range(n):"):
            in_loop = True
            out.append(line)
            out.append("            _t0 = _rdtsc()")
            continue
        if in_loop and stripped.startswith("# ---- "):
            if names:
                out.append(
                    f"            _t = _rdtsc(); prof[{len(names) - 1}] += _t - _t0; _t0 = _t"
                )
            names.append(re.sub(r"\s*-+$", "", stripped[len("# ---- ") :]))
        if in_loop and line.startswith("        if n > 0:"):
            out.append(f"            _t = _rdtsc(); prof[{len(names) - 1}] += _t - _t0")
            in_loop = False
        out.append(line)
    if len(names) < 3:
        raise SystemExit("too few section headers found in the kernel: update this profiler")
    module = types.ModuleType("fused_kernel_profiled")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(head + sep + "\n".join(out), "fused_kernel_profiled", "exec"), module.__dict__)  # noqa: S102
    return module, names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000, help="rows per pass (3 passes)")
    ap.add_argument("--clip", type=float, default=0.0, help="max_norm; 0 = no clipping")
    args = ap.parse_args()
    fk, names = instrumented()
    config = RunConfig()
    X, Y = train_set(config).rows()
    model = build_model(config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stepper = fk.FusedStepper(model, opt, args.clip)
    h, c = model.init_hidden(1)
    params = tuple(p.detach().view(-1).numpy() for p in stepper.params)
    m, v, steps = stepper.state_views()  # creates Adam's state as torch would
    hyper = fk._hyper(0.9, 0.999, 1e-8, args.clip, np.float32)
    prof = np.zeros(len(names), np.int64)
    n = args.rows
    losses, outputs = np.empty(n, np.float32), np.empty(n, np.float32)

    def run(start: int) -> float:
        t0 = time.thread_time()
        fk._train_block(
            X[start : start + n], Y[start : start + n], params, m, v, steps,
            h.view(-1).numpy(), c.view(-1).numpy(), losses, outputs,
            stepper._gate_means, stepper._ws, hyper, 1e-3, 0.9, 0.999, prof,
        )  # fmt: skip
        return time.thread_time() - t0

    t0 = time.perf_counter()
    run(1)  # compiles the instrumented copy
    print(f"instrumented kernel compiled in {time.perf_counter() - t0:.1f} s")
    passes = []
    for k in range(3):
        prof[:] = 0
        cpu = run(1 + (k + 1) * n)
        passes.append((prof.copy(), cpu))
    # the pass least disturbed by other processes: the fewest ticks in all
    ticks, cpu = min(passes, key=lambda p: p[0].sum())
    total = ticks.sum()
    us = cpu / n * 1e6
    # The counter also runs while another process holds the core; that time falls on the
    # sections in proportion to their length, so the shares hold. The µs column spreads
    # the thread's own CPU time over the sections by those shares.
    print(f"{n} rows: {us:.2f} µs/row of thread CPU time ({n / cpu:,.0f} rows per CPU-second)")
    w = max(len(s) for s in names)
    print(f"  {'section':<{w}}  {'share':>6}  {'µs/row':>7}")
    for name, t in zip(names, ticks, strict=True):
        print(f"  {name:<{w}}  {100 * t / total:5.1f}%  {us * t / total:7.2f}")


if __name__ == "__main__":
    main()
