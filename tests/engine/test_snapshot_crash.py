"""A process killed (SIGKILL) while it writes a snapshot leaves the previous one whole."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.run import TrainingRun
from engine.store.files import read_file
from engine.store.sessions import list_sessions

REPO = Path(__file__).resolve().parents[2]

# Trains a few rows, saves, prints the position it saved, and again, forever. With
# "block" it saves once whole, then stalls inside the second save's write of latest.pt
# after writing half of the bytes, and says so.
CHILD = r"""
import json, os, sys, time, torch
torch.set_num_threads(1)
from engine.config import RunConfig
from engine.run import TrainingRun

root, mode = sys.argv[1], sys.argv[2]
if mode == "block":
    real_fdopen, opened = os.fdopen, []

    class HalfWriter:
        def __init__(self, f):
            self.f = f
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)
        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            os.fsync(self.f.fileno())
            print("HALF", flush=True)
            time.sleep(600)
        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(fd, *a, **kw):
        f = real_fdopen(fd, *a, **kw)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(".latest.pt."):  # the temporary file of latest.pt
            opened.append(fd)
        # save 1 writes latest.pt (and its sidecar); save 2 writes previous.pt, then
        # latest.pt: stall there
        return HalfWriter(f) if name.startswith(".latest.pt.") and len(opened) == 2 else f

    os.fdopen = fdopen

config = RunConfig(method="handoff", duration=0.05, backend="torch", epochs=1000).validated()
run = TrainingRun(config, sessions_root=root, run_id="crash", state_check=False)
while True:
    run.trainer.train_rows(7)
    if run.trainer.row >= run.trainer.rows_per_epoch:
        run.trainer.end_epoch()
    run.save_snapshot("autosave")
    tr = run.trainer
    print(json.dumps([tr.epoch, tr.row]), flush=True)
"""


def start(root: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL


def position(path: Path) -> list[int]:
    obj = read_file(path)  # checks format, checksum, config and weight shapes
    return [obj["trainer"]["epoch"], obj["trainer"]["row"]]


@pytest.mark.slow
def test_a_kill_halfway_through_writing_latest_leaves_the_previous_snapshot_whole(tmp_path):
    child = start(tmp_path, "block")
    try:
        first = json.loads(child.stdout.readline())  # save 1 is complete
        folder = tmp_path / "crash"
        saved = (folder / "latest.pt").read_bytes()
        assert child.stdout.readline().strip() == "HALF"  # save 2 is half-way through latest
    finally:
        kill(child)
    tmps = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(tmps) == 1 and 0 < tmps[0].stat().st_size < len(saved)  # the torn write
    assert (folder / "latest.pt").read_bytes() == saved  # untouched by the torn write
    assert position(folder / "latest.pt") == first
    assert position(folder / "previous.pt") == first  # rotated before the torn write
    # the session lists, resumes, and saves again over the debris
    (info,) = list_sessions(tmp_path)
    assert info.error is None and (info.epoch - 1, info.row) == tuple(first)
    run = TrainingRun.resume("crash", root=tmp_path)
    run.trainer.train_rows(3)
    assert position(run.save_snapshot()) == [first[0], first[1] + 3]
    assert position(folder / "previous.pt") == first


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_kill_at_a_random_moment_leaves_whole_snapshots(tmp_path, seed):
    rnd = random.Random(seed)
    child = start(tmp_path, "loop")
    reported = []
    try:
        for _ in range(rnd.randint(2, 6)):
            reported.append(json.loads(child.stdout.readline()))
        time.sleep(rnd.uniform(0.0, 0.05))  # then kill it wherever it is: training or saving
    finally:
        kill(child)
    folder = tmp_path / "crash"
    latest, previous = position(folder / "latest.pt"), position(folder / "previous.pt")
    last = reported[-1]
    # latest is the last save reported or one made after it; previous is older or, when
    # the kill fell between the two steps of a save, the same
    assert latest >= last
    assert reported[-2] <= previous <= latest
    model = read_file(folder / "latest.pt")["model"]
    assert all(torch.isfinite(v).all() for v in model.values())
