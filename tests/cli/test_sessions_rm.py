"""`freqtui sessions rm ID…` as a user runs it (real processes): an unknown id, a live
session and a run without a terminal are each refused on one line with exit 2, deleting
nothing; `--yes` deletes; on a terminal it asks, and only a yes deletes. The checks that
keep a deletion inside the sessions folder are engine tests (tests/engine)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.store import lock
from freqtui.cli import main

CLI = [sys.executable, "-m", "freqtui.cli"]


@pytest.fixture(scope="module")
def one_session(tmp_path_factory) -> Path:
    """A finished tiny headless session (trained once, in this process), to copy."""
    root = tmp_path_factory.mktemp("origin")
    argv = ["train", "--headless", "--method", "handoff", "--backend", "torch"]
    assert main([*argv, "--duration", "0.05", "--sessions", str(root), "--autosave", "0"]) == 0
    (folder,) = [f for f in root.iterdir() if f.is_dir()]
    return folder


@pytest.fixture
def root(tmp_path, one_session) -> Path:
    """A sessions folder holding sessions `s1`, `s2`, `s3` (copies of one real session)."""
    where = tmp_path / "sessions"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(one_session, where / name, ignore=shutil.ignore_patterns(".lock"))
    return where


def rm(root: Path, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "sessions", "rm", *args, "--sessions", str(root)],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def left(root: Path) -> list[str]:
    return sorted(f.name for f in root.iterdir())


def test_unknown_id_and_no_terminal_are_refused_on_one_line(root):
    r = rm(root, "s1", "no-such-id", "--yes")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "no-such-id: no such session" in r.stderr
    assert left(root) == ["s1", "s2", "s3"]  # s1 was named too: nothing goes
    r = rm(root, "s1")  # stdin is not a terminal, no --yes
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--yes" in r.stderr
    assert left(root) == ["s1", "s2", "s3"]


def test_a_live_session_is_refused_and_yes_deletes(root):
    held = lock.acquire(root / "s2")  # this test process owns s2: live for the command
    try:
        r = rm(root, "s1", "s2", "--yes")
        assert r.returncode == 2 and r.stderr.count("\n") == 1
        assert "s2 is in use by another process" in r.stderr
        assert left(root) == ["s1", "s2", "s3"]
    finally:
        held.release()
    r = rm(root, "s1", "s2", "--yes")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"deleted {root / 's1'}", f"deleted {root / 's2'}"]
    assert left(root) == ["s3"]


def ask(root: Path, answer: bytes) -> tuple[int, str]:
    """`sessions rm s1` on a terminal (a pty), typing `answer` once it asks."""
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [*CLI, "sessions", "rm", "s1", "--sessions", str(root)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)
        assert b"[y/N]" in seen, seen
        os.write(master, answer)
        code = p.wait(timeout=60)
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    return code, seen.decode(errors="replace")


def test_on_a_terminal_it_asks_and_only_yes_deletes(root):
    code, text = ask(root, b"n\n")
    assert code == 0 and "delete 1 session(s)" in text and "nothing deleted" in text
    assert left(root) == ["s1", "s2", "s3"]
    code, text = ask(root, b"y\n")
    assert code == 0 and f"deleted {root / 's1'}" in text
    assert left(root) == ["s2", "s3"]
