"""Quality table: frozen MSE of each training method, on the task as written and weakened.

    python bench/quality.py [--methods handoff,tbptt,clock] [--phase-scales 1.0,0.01]
                            [--minutes M] [--snapshot METHOD@SCALE=PATH ...] [--json OUT]
    python bench/quality.py --seeds 0-4 [--methods clock] [--phase-scales 1.0]
                            [--threads N] [--jobs N] [--keep DIR] [--json OUT]
                            [-- extra train flags]

`--seeds` runs each method's **default command**, `freqtui train --headless --method M
--phase-scale P --seed S --autosave 0`, as a separate process per seed (one after the
other, so they do not share the cores; `--jobs 2` runs two at a time, and their wall
times then share the cores), then reads the session's final snapshot: frozen MSE
train/test per frequency, frozen MSE on two held-out noise draws no run trains or selects
on (noise seeds 777 and 4242), which weights it holds (final, or best on the validation
draw), the last three frozen evaluations (has it settled?), the clock's fresh starts and
stage rollbacks (r/rb) and the wall time; then min / median / max across seeds. `--threads 1` sets OMP_NUM_THREADS=1 for the runs.

For each method and phase scale it trains a fresh model for at most `--minutes` of wall
time (or until the method's epochs are done), then measures, with frozen weights, MSE on
the train set (seed 1) and the test set (seed 2) at that phase scale, per frequency. A
`--snapshot` replaces the training of one cell by saved weights (e.g. the committed
`models/` snapshots, whose training time and rows are read from the file when present).
Two reference rows need no training: predicting zero (MSE 0.5, the variance of a sine)
and a 2nd-order Butterworth band-pass of S, zero-phase (filtfilt), gain 4 (S is the mean
of four components), pass band f_i ± 0.5 Hz.

The "data" column says what the method trained on: the seed-1 rows only, or fresh noise
drawn by the spec's recipe from a seed of its own (never the test seed).

Short version (a few minutes): `--minutes 0.5`. The defaults below are each method's
settings for the long run; `--minutes 30` gives every method the goal's budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, filtfilt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import RunConfig  # noqa: E402
from engine.evaluation import evaluate, frozen_mse  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.signals import for_config, test_set, train_set  # noqa: E402
from engine.store.files import read  # noqa: E402
from engine.training import make_trainer  # noqa: E402

# each method's settings for this table (RunConfig fields + options)
METHODS: dict[str, dict] = {
    "handoff": {"lr": 1e-3, "epochs": 100, "options": {}},
    "tbptt": {
        "lr": 2e-3,
        "clip": 1.0,
        "epochs": 10_000,
        "backend": "torch",
        "options": {"k": 500, "noise": "fresh"},
    },
    "clock": {
        "lr": 3e-3,
        "clip": 1.0,
        "epochs": 10_000,
        "backend": "torch",
        "options": {},
    },
}
HELDOUT_SEEDS = (777, 4242)  # noise seeds no run trains on or selects with
DATA = {"handoff": "seed-1 rows", "tbptt": "fresh draws", "clock": "fresh draws"}


def bandpass_mse(config: RunConfig) -> tuple[dict, dict]:
    out = {}
    for name, sig in (("train", train_set(config)), ("test", test_set(config))):
        per = []
        for i, f in enumerate(sig.frequencies):
            b, a = butter(2, [max(f - 0.5, 0.05), f + 0.5], btype="band", fs=config.fs)
            y = 4.0 * filtfilt(b, a, sig.S.astype(np.float64))
            per.append(float(np.mean((y - sig.targets[i]) ** 2)))
        out[name] = {"overall": float(np.mean(per)), "per_frequency": per}
    return out["train"], out["test"]


def zero_mse(config: RunConfig) -> tuple[dict, dict]:
    out = {}
    for name, sig in (("train", train_set(config)), ("test", test_set(config))):
        per = [float(np.mean(row.astype(np.float64) ** 2)) for row in sig.targets]
        out[name] = {"overall": float(np.mean(per)), "per_frequency": per}
    return out["train"], out["test"]


def train_cell(method: str, phase_scale: float, minutes: float, seed: int) -> dict:
    settings = dict(METHODS[method])
    options = dict(settings.pop("options"))
    if method == "tbptt" and "noise" in options:
        data = "fresh draws" if options["noise"] == "fresh" else "seed-1 rows"
    else:
        data = DATA[method]
    config = RunConfig(
        method=method, phase_scale=phase_scale, torch_seed=seed, options=options, **settings
    ).validated()
    model = build_model(config)
    trainer = make_trainer(model, config, train_set(config))
    rows, t0 = 0, time.perf_counter()
    deadline = t0 + 60.0 * minutes
    while not trainer.finished and time.perf_counter() < deadline:
        rows += trainer.train_rows(2_000).rows
        if trainer.row >= trainer.rows_per_epoch:
            trainer.end_epoch()
    seconds = time.perf_counter() - t0
    e = evaluate(model, config)
    return {
        "method": method,
        "phase_scale": phase_scale,
        "train": e.train.to_dict(),
        "test": e.test.to_dict(),
        "seconds": seconds,
        "rows": rows,
        "data": data,
        "source": f"trained here, {minutes:g} min budget",
    }


def snapshot_cell(method: str, phase_scale: float, path: Path) -> dict:
    snap = read(path)  # weights saved by `train --out` keep the history too
    config = snap.config.replace(phase_scale=phase_scale)
    e = evaluate(snap.build_model(), config)
    opts = config.options
    meta = {
        "train_seconds": snap.history.train_seconds if snap.history.rows_total else None,
        "rows_total": snap.history.rows_total or None,
        "data": "seed-1 rows"
        if config.method == "handoff" or opts.get("noise") == "train"
        else "fresh draws",
    }
    return {
        "method": method,
        "phase_scale": phase_scale,
        "train": e.train.to_dict(),
        "test": e.test.to_dict(),
        "seconds": meta.get("train_seconds"),
        "rows": meta.get("rows_total"),
        "data": meta.get("data", DATA.get(method, "?")),
        "source": str(path),
    }


def fmt_row(label: str, ps: float, cell: dict) -> str:
    tr, te = cell["train"], cell["test"]
    per = " ".join(f"{v:7.4f}" for v in te["per_frequency"])
    secs = "" if cell.get("seconds") is None else f"{cell['seconds']:7.0f}"
    rows = "" if cell.get("rows") is None else f"{cell['rows']:>13,}"
    return (
        f"{label:10s} {ps:6g} {tr['overall']:9.4f} {te['overall']:9.4f}  {per}  "
        f"{secs:>7s} {rows:>13s}  {cell.get('data', '')}"
    )


def parse_seeds(text: str) -> list[int]:
    """`0-4` or `0,2,5` or `3`."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def seed_cell(
    method: str, ps: float, seed: int, threads: int | None, extra: list[str], keep: Path | None
) -> dict:
    """One run of the default command in its own process; results from its snapshot
    (kept under `keep` when given, else in a temporary folder)."""
    import contextlib
    import os
    import subprocess
    import tempfile

    from engine.store.sessions import list_sessions

    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if keep is not None:
        folder = keep / f"{method}-phase{ps:g}-seed{seed}"
        folder.mkdir(parents=True, exist_ok=False)
        where = contextlib.nullcontext(str(folder))
    else:
        where = tempfile.TemporaryDirectory(prefix="freqtui-quality-")
    with where as root:
        cmd = [
            sys.executable, "-m", "freqtui.cli", "train", "--headless", "--autosave", "0",
            "--method", method, "--phase-scale", f"{ps:g}", "--seed", str(seed),
            "--sessions", root, *extra,
        ]  # fmt: skip
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"seed {seed}: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
        (info,) = list_sessions(Path(root))
        snap = read(info.path)
        config, model = snap.config, snap.build_model()
        e = evaluate(model, config)
        evals = snap.history.evals
        trainer = snap.trainer or {}
        # two noise draws no run ever trains or selects on: does it generalise to new noise?
        heldout = [frozen_mse(model, for_config(config, s)).overall for s in HELDOUT_SEEDS]
        return {
            "method": method,
            "phase_scale": ps,
            "seed": seed,
            "threads": threads or "default",
            "train": e.train.to_dict(),
            "test": e.test.to_dict(),
            "weights": snap.weights_note,
            "heldout": heldout,
            "restarts": int(trainer.get("restarts", 0)),
            "stage_rollbacks": int(trainer.get("stage_rollbacks", 0)),
            "last_three_test": [x.test.overall for x in evals[-3:]],
            "wall_seconds": wall,
            "train_seconds": snap.history.train_seconds,
            "rows": snap.history.rows_total,
            "command": "freqtui " + " ".join(cmd[3:-2]),
        }


def seeds_main(args: argparse.Namespace, methods: list[str], scales: list[float]) -> int:
    seeds = parse_seeds(args.seeds)
    cells = []
    print("default command per seed; frozen MSE (weights fixed): train = seed 1, test = seed 2")
    head = (
        f"{'method':7s} {'phase':>5s} {'seed':>4s} {'MSE train':>9s} {'MSE test':>9s}  "
        f"{'held-out noise':15s}  {'test per frequency':31s}  {'last 3 frozen tests':23s} "
        f"{'r/rb':7s} {'wall s':>6s}  weights"
    )
    print(head)
    print("-" * len(head))
    from concurrent.futures import ThreadPoolExecutor

    for m in methods:
        for ps in scales:
            group = []
            # --jobs N runs N seeds at a time (each its own process): their wall times then
            # share the cores and say so
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                runs = [
                    pool.submit(seed_cell, m, ps, sd, args.threads, args.extra, args.keep)
                    for sd in seeds
                ]
                for sd, fut in zip(seeds, runs, strict=True):
                    c = fut.result()
                    group.append(c)
                    cells.append(c)
                    per = " ".join(f"{v:.5f}" for v in c["test"]["per_frequency"])
                    held = " ".join(f"{v:.5f}" for v in c["heldout"])
                    last = " ".join(f"{v:.5f}" for v in c["last_three_test"])
                    print(
                        f"{m:7s} {ps:5g} {sd:4d} {c['train']['overall']:9.5f} "
                        f"{c['test']['overall']:9.5f}  {held:15s}  {per:31s}  {last:23s} "
                        f"{c['restarts']:3d}/{c['stage_rollbacks']:<3d} "
                        f"{c['wall_seconds']:6.0f}  {c['weights']}",
                        flush=True,
                    )
            te = np.array([c["test"]["overall"] for c in group])
            tr = np.array([c["train"]["overall"] for c in group])
            worst_f = max(max(c["test"]["per_frequency"]) for c in group)
            held_gap = max(abs(h / c["test"]["overall"] - 1) for c in group for h in c["heldout"])
            wall = np.array([c["wall_seconds"] for c in group])
            print(
                f"  {m} phase {ps:g}, seeds {args.seeds}: MSE test min {te.min():.5f} median "
                f"{np.median(te):.5f} max {te.max():.5f}; MSE train min {tr.min():.5f} median "
                f"{np.median(tr):.5f} max {tr.max():.5f}; worst frequency {worst_f:.5f}; "
                f"held-out noise within {held_gap:.0%} of test; "
                f"wall s min {wall.min():.0f} median {np.median(wall):.0f} max {wall.max():.0f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="handoff,tbptt,clock")
    p.add_argument("--phase-scales", default="1.0,0.01")
    p.add_argument("--minutes", type=float, default=0.5, help="training budget per cell")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the weight init")
    p.add_argument(
        "--snapshot",
        action="append",
        default=[],
        metavar="METHOD@SCALE=PATH",
        help="evaluate saved weights for this cell instead of training (repeatable)",
    )
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    p.add_argument("--seeds", help="run the default command for these torch seeds (0-4)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the --seeds runs")
    p.add_argument("--jobs", type=int, default=1, help="--seeds runs at a time (default 1)")
    p.add_argument("--keep", type=Path, help="keep the --seeds runs' sessions under this folder")
    p.add_argument("extra", nargs="*", help="after --: more train flags for the --seeds runs")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            p.error(f"unknown method {m!r}: choose from {', '.join(METHODS)}")
    scales = [float(s) for s in args.phase_scales.split(",") if s]
    if args.seeds:
        if args.methods == p.get_default("methods"):
            methods = ["clock"]
        if args.phase_scales == p.get_default("phase_scales"):
            scales = [1.0]
        return seeds_main(args, methods, scales)
    snaps: dict[tuple[str, float], Path] = {}
    for s in args.snapshot:
        key, _, path = s.partition("=")
        m, _, sc = key.partition("@")
        if not path or not sc:
            p.error(f"--snapshot wants METHOD@SCALE=PATH, got {s!r}")
        snaps[(m, float(sc))] = Path(path)

    cells = []
    header = (
        f"{'method':10s} {'phase':>6s} {'MSE train':>9s} {'MSE test':>9s}  "
        f"{'test per frequency (1, 3, 5, 7 Hz)':34s}  {'train s':>7s} {'rows seen':>13s}  data"
    )
    print("frozen MSE: weights fixed, each block from a zero state at t = 0, state carried;")
    print("train = seed 1, test = seed 2, at the row's phase scale")
    print(header)
    print("-" * len(header))
    for ps in scales:
        config = RunConfig(phase_scale=ps, backend="torch")
        for label, fn, data in (
            ("zero", zero_mse, "(predicts 0)"),
            ("band-pass", bandpass_mse, "(filter of S, no training)"),
        ):
            tr, te = fn(config)
            cell = {"method": label, "phase_scale": ps, "train": tr, "test": te, "data": data}
            cells.append(cell)
            print(fmt_row(label, ps, cell), flush=True)
        for m in methods:
            if (m, ps) in snaps:
                cell = snapshot_cell(m, ps, snaps[(m, ps)])
            else:
                cell = train_cell(m, ps, args.minutes, args.seed)
            cells.append(cell)
            print(fmt_row(m, ps, cell), flush=True)
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
