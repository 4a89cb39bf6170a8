"""What paths, flags and locks refuse is refused before torch loads (issue 18).

Importing engine.run (torch, numba) and building a run (its data, model and trainer)
take seconds; a refusal that needs none of it (a file as the sessions folder, --out on a
folder, a --resume that names nothing, a session another process owns, a report's --out
that is a file) is one line and exit 2 without it. Each case runs the real CLI in a
process that writes, when it exits, which of torch, numba and engine.run it imported.
A control that must read a snapshot (a finished session without --epochs) shows the
probe sees torch when it is loaded."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every case starts the CLI in a process of its own

HEAVY = ("torch", "numba", "engine.run")
PROBE = f"""
import atexit, os, runpy, sys
def loaded():
    with open(os.environ["FREQTUI_LOADED"], "w") as f:
        f.write(" ".join(m for m in {HEAVY!r} if m in sys.modules))
atexit.register(loaded)
sys.argv = ["freqtui", *sys.argv[1:]]
runpy.run_module("freqtui.cli", run_name="__main__")
"""
TINY = ["--duration", "0.2", "--method", "handoff", "--backend", "torch"]


def run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The CLI with `args`, and the heavy modules it had imported when it exited."""
    record = tmp_path / "loaded.txt"
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FREQTUI_LOADED": str(record)},
    )
    assert record.exists(), r.stderr  # the probe ran
    return r, record.read_text().split()


def assert_refused_light(r, loaded: list[str], *words: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    for w in words:
        assert w in lines[0], lines[0]
    assert "training:" not in r.stdout
    assert loaded == [], f"refused only after importing {loaded}: {lines[0]}"


@pytest.fixture
def afile(tmp_path) -> Path:
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    return f


@pytest.mark.parametrize("console", [False, True], ids=["headless", "console"])
def test_a_file_as_the_sessions_folder(tmp_path, afile, console):
    args = [] if console else ["train", "--headless"]
    r, loaded = run(tmp_path, *args, "--sessions", str(afile), *TINY)
    assert_refused_light(r, loaded, str(afile), "cannot save snapshots there", "Not a directory")


def test_out_on_a_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = ["train", "--headless", "--sessions", str(tmp_path / "s"), *TINY, "--out", str(out)]
    r, loaded = run(tmp_path, *args)
    assert_refused_light(r, loaded, f"{out}: is a folder; --out takes a file path")


@pytest.mark.parametrize("console", [False, True], ids=["headless", "console"])
def test_resume_of_a_missing_session(tmp_path, console):
    args = ["--resume", "no-such-id", "--sessions", str(tmp_path / "s")]
    r, loaded = run(tmp_path, *([] if console else ["train", "--headless"]), *args)
    assert_refused_light(r, loaded, "no-such-id: no such file or session")


def test_resume_of_a_folder_without_a_snapshot(tmp_path):
    empty = tmp_path / "s" / "20260101-000000-handoff"
    empty.mkdir(parents=True)
    r, loaded = run(tmp_path, "train", "--headless", "--resume", str(empty))
    assert_refused_light(r, loaded, "a folder with no latest.pt in it")


@pytest.mark.parametrize("console", [False, True], ids=["headless", "console"])
def test_resume_of_a_session_another_process_owns(tmp_path, copy_session, console):
    sessions = tmp_path / "s"
    run_id = copy_session(sessions)
    fd = os.open(sessions / run_id / ".lock", os.O_RDWR | os.O_CREAT)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        pass_fds=(fd,),
    )
    fcntl.flock(fd, fcntl.LOCK_EX)  # shared with the child: the lock is its too
    # the copied session's .lock names the process that trained it: replaced whole, as
    # lock.acquire does. Pids wrap at 32,768 here, and a shorter pid written over a longer
    # one leaves "123\n5\n", which reads as no pid: the likely cause of both cases failing
    # in one -n 2 run (its output was not kept)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{holder.pid}\n".encode(), 0)
    os.close(fd)
    try:
        args = ["--resume", run_id, "--epochs", "3", "--sessions", str(sessions)]
        r, loaded = run(tmp_path, *([] if console else ["train", "--headless"]), *args)
    finally:
        holder.communicate(b"")
    assert_refused_light(r, loaded, f"session {run_id} is in use by process {holder.pid}")


def test_resume_with_out_on_a_folder(tmp_path, copy_session):
    sessions = tmp_path / "s"
    run_id = copy_session(sessions)
    args = ["train", "--headless", "--resume", run_id, "--epochs", "3"]
    r, loaded = run(tmp_path, *args, "--sessions", str(sessions), "--out", str(tmp_path))
    assert_refused_light(r, loaded, f"{tmp_path}: is a folder; --out takes a file path")


@pytest.mark.parametrize("what", ["missing", "out is a file"])
def test_report_refusals(tmp_path, copy_session, afile, what):
    sessions = tmp_path / "s"
    run_id = copy_session(sessions)
    target = "no-such-id" if what == "missing" else run_id
    r, loaded = run(tmp_path, "report", target, "--sessions", str(sessions), "--out", str(afile))
    words = "no such file or session" if what == "missing" else "exists and is not a folder"
    assert_refused_light(r, loaded, words)


def test_the_probe_sees_torch_when_a_refusal_needs_the_snapshot(tmp_path, copy_session):
    sessions = tmp_path / "s"
    run_id = copy_session(sessions)  # finished: without --epochs there is nothing to train
    args = ["train", "--headless", "--resume", run_id, "--sessions", str(sessions)]
    r, loaded = run(tmp_path, *args)
    assert r.returncode == 2 and "has finished" in r.stderr, r.stderr
    assert "torch" in loaded and "engine.run" in loaded, loaded
