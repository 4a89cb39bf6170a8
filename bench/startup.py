"""Start-up of the commands that train nothing, against loading torch: the wall time of
`freqtui --help`, `freqtui sessions` over 100 sessions and `freqtui eval` of a refused
(hostile) file, each as a ratio to `python -c "import torch"` on the same machine, in
the same run. Goal: each ratio <= 0.25.

    python bench/startup.py [--repeats 7] [--sessions 100]

Every command is a fresh process of this interpreter (`python -m freqtui.cli`, this
checkout first on the path). The rounds interleave the commands, rotating their order,
so load from other processes on a shared machine falls on all of them alike; min and
median over the rounds are printed, and the ratios of both. The 100 sessions are made
in a temporary folder as a run saves them (snapshot and sidecar), from one untrained
run, so making them costs seconds; the refused file is a zip whose member is deflated
(a zip bomb's shape), refused before anything is unpacked.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = 0.25


def make_sessions(root: Path, n: int) -> None:
    from engine.config import RunConfig
    from engine.run import TrainingRun
    from engine.store.sessions import snapshot_payload, write_snapshot

    config = RunConfig(method="handoff", duration=0.05, backend="torch")
    capture = TrainingRun(config, sessions_root=root, run_id="bench-000").capture()
    for i in range(n):
        run_id = f"bench-{i:03d}"
        write_snapshot(root / run_id, snapshot_payload(capture, run_id))


def make_refused(path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * 50_000_000)  # 50 MB in a few kB


def wall(cmd: list[str], env: dict[str, str], expect: int) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}, not {expect}: {r.stderr[-500:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="rounds (default 7)")
    ap.add_argument("--sessions", type=int, default=100, help="sessions listed (default 100)")
    args = ap.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    py, cli = sys.executable, [sys.executable, "-m", "freqtui.cli"]
    with tempfile.TemporaryDirectory(prefix="freqtui-startup-") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        make_sessions(tmp_path / "sessions", args.sessions)
        refused = tmp_path / "refused.pt"
        make_refused(refused)
        print(f"made {args.sessions} sessions in {time.perf_counter() - t0:.1f} s")
        commands = {
            'python -c "import torch"': ([py, "-c", "import torch"], 0),
            "freqtui --help": ([*cli, "--help"], 0),
            f"freqtui sessions ({args.sessions})": (
                [*cli, "sessions", "--sessions", str(tmp_path / "sessions")],
                0,
            ),
            "freqtui eval (refused file)": ([*cli, "eval", str(refused)], 2),
        }
        names = list(commands)
        for cmd, expect in commands.values():  # warm the file cache and bytecode, untimed
            wall(cmd, env, expect)
        times: dict[str, list[float]] = {n: [] for n in names}
        for k in range(args.repeats):
            for name in names[k % len(names) :] + names[: k % len(names)]:
                cmd, expect = commands[name]
                times[name].append(wall(cmd, env, expect))
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
          f"{args.repeats} rounds")  # fmt: skip
    base = times[names[0]]
    bmin, bmed = min(base), statistics.median(base)
    print(f"{'command':34}{'min s':>8}{'median s':>10}{'ratio min':>11}{'ratio median':>14}")
    ok = True
    for name in names:
        tmin, tmed = min(times[name]), statistics.median(times[name])
        line = f"{name:34}{tmin:8.3f}{tmed:10.3f}"
        if name != names[0]:
            rmin, rmed = tmin / bmin, tmed / bmed
            ok &= rmed <= GOAL
            line += f"{rmin:11.3f}{rmed:14.3f}"
        print(line)
    print(f"goal: each ratio <= {GOAL} (median): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
