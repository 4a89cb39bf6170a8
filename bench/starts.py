"""Per-start pass rate of the clock's curriculum: does a fresh start find the oscillator?

    python bench/starts.py --seeds 0-19 [--backend fused|torch] [--cap 3000] [--jobs 2]
                           [--code DIR] [--json OUT]

A *start* is one initialisation (torch seed s) trained by the clock's own schedule from
its first step, every option at its default. Every 50 steps the start is checked with
frozen weights: a free run from a zero state at t = 0 with S = 0 (the one-hot C only)
over the first 3,375 rows of each frequency block. The start **passes** when that free
run's MSE against the clean target is below 0.04 on *every* block (past the 1 Hz trap:
a transient that fits one period and dies out fails it). It **fails** when the clock's
own rules give up on it (its restart counter moves: no oscillation at the first stage,
or a trap it could not roll back out of) or at `--cap` steps.

Printed per start: passed or why not, steps, seconds; then the pass rate, seconds per
start and seconds per passing start. `--code DIR` measures another checkout's clock (for
example the commit before a change: `git worktree add /tmp/before <rev>`), so "before"
and "after" are run by the same harness. `--jobs 2` runs two starts at a time (their
seconds then share the cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CHECK_EVERY = 50  # steps between two free-run checks
ROWS = 3375  # rows of each block the free run must hold (past the 1 Hz trap)
PASS_MSE = 0.04


def parse_seeds(text: str) -> list[int]:
    """`0-19` or `0,2,5` or `3`."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def free_run_mse(model, config, rows: int):
    """Frozen MSE of each block over its first `rows` rows, S = 0, from a zero state."""
    import torch

    from engine.signals import train_set

    F = config.n_blocks
    n = min(rows, config.n_samples)
    x = torch.zeros(F, n, 1 + F)
    for i in range(F):
        x[i, :, 1 + i] = 1.0
    y = torch.from_numpy(train_set(config).targets[:, :n].astype("float32"))
    with torch.no_grad():
        out, _ = model(x, model.init_hidden(F))
    return ((out[..., 0] - y) ** 2).mean(dim=1).tolist()


def one_start(code: str, seed: int, backend: str, cap: int) -> dict:
    sys.path.insert(0, code)
    import torch

    from engine.config import RunConfig
    from engine.model import build_model
    from engine.signals import train_set
    from engine.training import make_trainer

    torch.set_num_threads(1)
    config = RunConfig(method="clock", backend=backend, torch_seed=seed).validated()
    torch.manual_seed(seed)
    model = build_model(config)
    trainer = make_trainer(model, config, train_set(config))
    t0 = time.perf_counter()
    result, mse = "cap", None
    for step in range(1, cap + 1):
        trainer.step()
        if trainer.restarts:
            result = "gave up (the clock's own rule)"
            break
        if step % CHECK_EVERY == 0:
            mse = free_run_mse(model, config, ROWS)
            if max(mse) < PASS_MSE:
                result = "passed"
                break
    return {
        "seed": seed,
        "result": result,
        "steps": step,
        "seconds": time.perf_counter() - t0,
        "free_run_mse": mse,
        "backend": trainer.backend,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-19")
    p.add_argument("--backend", default="fused", choices=("fused", "torch"))
    p.add_argument("--cap", type=int, default=3000, help="steps before a start counts as failed")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    code = str(args.code.resolve())
    print(
        f"clock starts from {code}: pass = frozen free run (S = 0, zero state) MSE < "
        f"{PASS_MSE} on every block over its first {ROWS:,} rows, checked every "
        f"{CHECK_EVERY} steps; cap {args.cap} steps; backend {args.backend}"
    )
    cells = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(one_start, code, s, args.backend, args.cap) for s in seeds]
        for fut in futures:
            c = fut.result()
            cells.append(c)
            mse = " ".join(f"{v:.3f}" for v in c["free_run_mse"] or [])
            print(
                f"seed {c['seed']:3d}  {c['result']:32s} steps {c['steps']:5d}  "
                f"{c['seconds']:6.1f} s  free run per block: {mse}",
                flush=True,
            )
    passed = sum(c["result"] == "passed" for c in cells)
    seconds = sum(c["seconds"] for c in cells)
    per_pass = f"{seconds / passed:.1f}" if passed else "-"
    print(
        f"passed {passed}/{len(cells)}; {seconds / len(cells):.1f} s per start; "
        f"{per_pass} s per passing start (backend {cells[0]['backend']}, jobs {args.jobs})"
    )
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
