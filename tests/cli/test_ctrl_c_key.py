"""Ctrl-C typed in the console (a key: the terminal is raw, so no SIGINT is sent) stops
the run as SIGINT does: the chunk ends, the snapshot is saved, the resume command is
printed, and the exit code is 130, as headless and the README say; `q` exits 0."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.files import read_file

CLI = [sys.executable, "-m", "freqtui.cli"]
TINY = ["--duration", "0.2", "--method", "handoff", "--backend", "torch", "--autosave", "0"]
WAIT_S = 90.0  # generous: the machine is shared and may be loaded


def console_key(sessions: Path, key: bytes) -> tuple[int, str]:
    """Run the console in a pty until training shows, type `key`; rc and what it wrote
    after leaving the alternate screen, escapes removed."""
    master, slave = os.openpty()
    p = subprocess.Popen(
        [*CLI, "--sessions", str(sessions), *TINY, "--epochs", "50"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm-256color"},
        start_new_session=True,
    )
    os.close(slave)
    out = bytearray()

    def pump(until) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not until():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    out.extend(os.read(master, 65536))
                except OSError:
                    return

    try:
        pump(lambda: b"state check passed" in out)
        assert b"state check passed" in out, "the console never started training"
        started = time.monotonic()
        pump(lambda: time.monotonic() - started > 1.0)
        os.write(master, key)
        pump(lambda: p.poll() is not None)
        rc = p.wait(5)
        pump(lambda: not select.select([master], [], [], 0.2)[0])  # its last lines
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    tail = out.split(b"\x1b[?1049l")[-1]
    return rc, re.sub(rb"\x1b\[[0-9;?<>]*[A-Za-z]", b"", tail).decode().replace("\r\n", "\n")


@pytest.mark.parametrize("key, code", [(b"\x03", 130), (b"q", 0)])
def test_ctrl_c_in_the_console_exits_130_and_q_exits_0(tmp_path, key, code):
    sessions = tmp_path / "s"
    rc, text = console_key(sessions, key)
    assert rc == code, text[-2000:]
    assert "Traceback" not in text
    (folder,) = [d for d in sessions.iterdir() if d.is_dir()]
    obj = read_file(folder / "latest.pt")  # the stop saved it
    assert obj["trainer"]["epoch"] > 0 or obj["trainer"]["row"] > 0
    assert f"--resume {folder.name}" in text, text[-2000:]
    if key == b"\x03":
        assert "stopped by Ctrl-C" in text
