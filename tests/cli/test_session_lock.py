"""One process per session: a second --resume of a session that a live process owns gets
one line naming the holder's pid and exit 2; a lock left by a killed process never blocks.
Leftover temp files of an interrupted write are removed by the next listing, unless
another process owns the session (its save may be in progress)."""

import fcntl
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "freqtui.cli"]
WAIT_S = 90.0


def resume(sessions: Path, run_id: str, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "train", "--headless", "--sessions", str(sessions), "--resume", run_id, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(p: subprocess.Popen, words: str) -> None:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True).start()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if words in lines.get(timeout=0.2):
                return
        except queue.Empty:
            assert p.poll() is None, p.stderr.read()
    raise AssertionError(f"no line with {words!r}")


@pytest.mark.slow
def test_a_second_resume_of_a_running_session_is_refused_and_a_dead_holder_never_blocks(
    tmp_path, copy_session
):
    sessions = tmp_path / "s"
    run_id = copy_session(sessions)  # a finished session (tests/conftest.py)
    holder = resume(sessions, run_id, "--epochs", "50")
    try:
        wait_for_line(holder, "resuming session")
        second = subprocess.run(
            [*CLI, "train", "--headless", "--sessions", str(sessions), "--resume", run_id]
            + ["--epochs", "50"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert f"in use by process {holder.pid}" in lines[0]
        assert "training:" not in second.stdout
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel drops it
        holder.wait(30)
    assert (sessions / run_id / ".lock").exists()  # the stale lock file is still there
    third = resume(sessions, run_id, "--epochs", "50")
    try:
        wait_for_line(third, "resuming session")  # not blocked
    finally:
        third.send_signal(signal.SIGTERM)
        assert third.wait(WAIT_S) == 143


@pytest.mark.slow
def test_the_console_refuses_a_session_a_headless_run_owns(tmp_path, copy_session):
    sessions = tmp_path / "s"
    run_id = copy_session(sessions)
    holder = resume(sessions, run_id, "--epochs", "50")
    try:
        wait_for_line(holder, "resuming session")
        r = subprocess.run(
            [*CLI, "--sessions", str(sessions), "--resume", run_id, "--epochs", "50"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 2 and f"in use by process {holder.pid}" in r.stderr
        assert "\x1b[?1049h" not in r.stdout + r.stderr  # refused before the console opened
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(WAIT_S)


def test_a_listing_removes_the_temp_files_of_an_interrupted_write(tmp_path, copy_session):
    sessions = tmp_path / "s"
    run_id = copy_session(sessions)
    folder = sessions / run_id
    debris = [folder / ".latest.pt.k1l2m3.tmp", folder / ".previous.pt.x9y8.tmp"]
    for p in debris:
        p.write_bytes(b"half a snapshot")
    # while another process owns the session its temp files may be a save in progress
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    held = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        pass_fds=(fd,),
    )
    fcntl.flock(fd, fcntl.LOCK_EX)  # the child shares this open file, so the lock is its too
    os.close(fd)
    try:
        r = subprocess.run([*CLI, "sessions", "--sessions", str(sessions)], capture_output=True)
        assert r.returncode == 0 and all(p.exists() for p in debris)
    finally:
        held.communicate(b"")  # the child ends; with it the last holder of the lock
    r = subprocess.run(
        [*CLI, "sessions", "--sessions", str(sessions)], capture_output=True, text=True
    )
    assert r.returncode == 0 and run_id in r.stdout
    assert not any(p.exists() for p in debris)
    assert (folder / "latest.pt").exists()
