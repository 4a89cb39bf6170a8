"""A console whose terminal is gone exits: the run stops, saves, frees its session and the
process ends within 10 s, whatever Textual's writer thread was doing.

Each console runs in a real pseudo-terminal whose master side the test closes under it,
as a terminal window, tmux kill-session or an ssh drop does. Two ways, each several times:
- `hangup`: the pty is the console's controlling terminal, so the kernel sends SIGHUP;
- `no-signal`: it is not, so the console only sees its writes to the terminal fail (the
  way that used to leave the process training forever, holding its session)."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from engine.store import lock
from engine.store.files import read_file

CLI = [sys.executable, "-m", "freqtui.cli"]
FLAGS = ["--duration", "0.5", "--method", "handoff", "--backend", "torch", "--autosave", "0"]
FLAGS += ["--epochs", "50"]  # never ends on its own within the test
START_WAIT_S = 90.0  # the machine is shared: starting torch may be slow
EXIT_WITHIN_S = 10.0  # the bound, from the terminal closing to the process gone
ROUNDS = 3


class Console:
    def __init__(self, sessions: Path, controlling: bool) -> None:
        self.sessions = sessions
        self.master, slave = os.openpty()

        def own_terminal() -> None:  # in the child: a new session, this pty its terminal
            os.setsid()
            if controlling:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.p = subprocess.Popen(
            [*CLI, "--sessions", str(sessions), *FLAGS],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "TERM": "xterm-256color"},
            preexec_fn=own_terminal,
        )
        os.close(slave)
        self.out = bytearray()

    def pump(self) -> None:
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.out.extend(chunk)

    def close_terminal(self) -> float:
        os.close(self.master)
        self.master = -1
        return time.monotonic()

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        if self.master >= 0:
            os.close(self.master)


def pump_until(consoles: list[Console], done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        for c in consoles:
            c.pump()
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_console_whose_terminal_is_closed_saves_frees_its_session_and_exits(tmp_path, round_):
    consoles = {
        "hangup": Console(tmp_path / "hangup", controlling=True),
        "no-signal": Console(tmp_path / "no-signal", controlling=False),
    }
    try:
        both = list(consoles.values())
        pump_until(both, lambda: all(b"state check passed" in c.out for c in both), START_WAIT_S)
        for name, c in consoles.items():
            assert b"state check passed" in c.out, f"{name}: the console never started training"
        pump_until(both, lambda: False, 1.0)  # some rows trained since: unsaved work
        closed = {name: c.close_terminal() for name, c in consoles.items()}
        for name, c in consoles.items():
            left = EXIT_WITHIN_S - (time.monotonic() - closed[name])
            try:
                rc = c.p.wait(max(left, 0.1))
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"{name}: still running {EXIT_WITHIN_S:.0f} s after its terminal closed"
                )
            assert rc == 129, f"{name}: exit code {rc}, not 128 + SIGHUP"
            (folder,) = [d for d in c.sessions.iterdir() if d.is_dir()]
            snapshot = read_file(folder / "latest.pt")  # format, checksum and weights checked
            trainer = snapshot["trainer"]
            assert trainer["epoch"] > 0 or trainer["row"] > 0, f"{name}: saved no training"
            assert not lock.owned_elsewhere(folder), f"{name}: the session is still locked"
            lock.acquire(folder).release()  # a --resume would now be accepted
    finally:
        for c in consoles.values():
            c.kill()
