"""SIGTERM, SIGHUP and Ctrl-C (SIGINT) stop a run like Ctrl-C always should: the chunk
ends, the final snapshot is saved, the session id and the resume command are printed,
and the exit code is 128 + the signal number. A second signal during the stop never
aborts the save. Runs use --autosave 0, so the only snapshot is the one the stop wrote."""

import os
import pty  # noqa: F401  (the console tests need a pseudo-terminal: fail early if absent)
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.store.files import read_file
from freqtui.cli import main

CLI = [sys.executable, "-m", "freqtui.cli"]
TINY = ["--duration", "0.2", "--method", "handoff", "--backend", "torch", "--autosave", "0"]
LONG = ["--epochs", "50"]  # never ends on its own within a test
WAIT_S = 90.0  # generous: the machine is shared and may be loaded


class Headless:
    """A headless run whose stdout lines are read on a thread, so a test can wait for one."""

    def __init__(self, sessions: Path, *flags: str) -> None:
        self.sessions = sessions
        self.p = subprocess.Popen(
            [*CLI, "train", "--headless", "--sessions", str(sessions), *TINY, *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.put(line)

    def wait_for(self, words: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.p.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if words in line:
                return line
        raise AssertionError(f"no line with {words!r}: {self.seen} {self.p.stderr.read()}")

    def finish(self) -> tuple[int, str]:
        rc = self.p.wait(WAIT_S)
        return rc, self.p.stderr.read()


def snapshot_position(sessions: Path) -> tuple[str, int, int]:
    (folder,) = [d for d in sessions.iterdir() if d.is_dir()]
    obj = read_file(folder / "latest.pt")  # checks format, checksum, config and weights
    return obj["run_id"], int(obj["trainer"]["epoch"]), int(obj["trainer"]["row"])


def resume_one_more_epoch(sessions: Path, run_id: str, epoch: int, capfd) -> tuple[int, str, str]:
    """`freqtui train --headless --resume ID --epochs epoch+1`, in this process: what is
    checked is the snapshot the stopped process left, not this run's process (which
    would only add a start of Python and torch to every case)."""
    capfd.readouterr()
    rc = main(
        ["train", "--headless", "--resume", run_id, "--sessions", str(sessions)]
        + ["--epochs", str(epoch + 1)]
    )
    out, err = capfd.readouterr()
    return rc, out, err


def assert_resumes(sessions: Path, stderr: str, console: bool, capfd) -> None:
    """The printed resume command names the session; the snapshot continues where it
    stopped (one more epoch, so the test ends)."""
    run_id, epoch, row = snapshot_position(sessions)
    assert epoch > 0 or row > 0, "the stop saved a run that had trained nothing"
    head = "freqtui" if console else "freqtui train --headless"
    assert f"resume with: {head} --resume {run_id} --sessions {sessions}" in stderr, stderr
    rc, out, err = resume_one_more_epoch(sessions, run_id, epoch, capfd)
    assert rc == 0, err
    assert f"resuming session {run_id} at epoch {epoch + 1}, row {row:,}" in out


STOPS = {  # a case's signals, sent a few ms apart, and the exit code they must give
    "TERM": ([signal.SIGTERM], 143),
    "HUP": ([signal.SIGHUP], 129),
    "INT": ([signal.SIGINT], 130),
    "INT-INT": ([signal.SIGINT, signal.SIGINT], 130),  # Ctrl-C twice, a few ms apart
    "TERM-INT-HUP": ([signal.SIGTERM, signal.SIGINT, signal.SIGHUP], 143),  # more during the save
}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict[str, tuple[Path, int, str]]:
    """Every case's headless run, started together (their starts of Python and torch
    overlap instead of queueing one after another) and each stopped by its signals once it
    has trained for a second: per case its sessions folder, exit code and stderr."""
    runs = {case: Headless(tmp_path_factory.mktemp(case) / "s", *LONG) for case in STOPS}
    try:
        for run in runs.values():
            run.wait_for("state check passed")
        time.sleep(1.0)  # some rows trained since, by every run
        stopped = {}
        # one at a time, each gone before the next is signalled: the last, whose signals
        # must be taken in the order sent, trains alone by then (Python runs the handlers
        # of signals pending together in signal-number order, SIGINT before SIGTERM)
        for case, run in runs.items():
            for s in STOPS[case][0]:
                run.p.send_signal(s)
                time.sleep(0.005)
            stopped[case] = (run.sessions, *run.finish())
        return stopped
    finally:
        for run in runs.values():
            if run.p.poll() is None:
                run.p.kill()
                run.p.wait()


@pytest.mark.slow
@pytest.mark.parametrize("case", list(STOPS))
def test_a_signal_stops_the_headless_run_saves_and_says_how_to_resume(stopped, capfd, case):
    signals, code = STOPS[case]
    sessions, rc, err = stopped[case]
    assert rc == code, err
    assert "Traceback" not in err and "terminate called" not in err
    name = "Ctrl-C" if signals[0] == signal.SIGINT else signals[0].name
    assert f"stopped by {name} after the current chunk and saved" in err
    assert_resumes(sessions, err, console=False, capfd=capfd)


# ---- the console, in a pseudo-terminal -------------------------------------------------
RESTORED = {  # what a terminal needs back: main screen, cursor, no mouse reports
    "alternate screen left": (b"\x1b[?1049h", b"\x1b[?1049l"),
    "cursor shown": (b"\x1b[?25l", b"\x1b[?25h"),
    "mouse tracking off": (b"\x1b[?1000h", b"\x1b[?1000l"),
}


def console(sessions: Path, stop: int | bytes, hang_up: bool) -> tuple[int, bytes]:
    """Run the console in a pty until training shows, then send the signal `stop`, or
    type it when it is a key (the terminal is raw: Ctrl-C is a key, no SIGINT is sent);
    with `hang_up` the terminal is closed at once, as when a terminal window is closed."""
    master, slave = os.openpty()
    p = subprocess.Popen(
        [*CLI, "--sessions", str(sessions), *TINY, *LONG],
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
        if isinstance(stop, bytes):
            os.write(master, stop)
        else:
            p.send_signal(stop)
        if hang_up:
            os.close(master)
            master = -1
            rc = p.wait(WAIT_S)
        else:
            pump(lambda: p.poll() is not None)
            rc = p.wait(5)
            while select.select([master], [], [], 0.2)[0]:  # what it wrote before it ended
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out.extend(chunk)
    finally:
        if p.poll() is None:
            p.kill()
        if master >= 0:
            os.close(master)
    return rc, bytes(out)


CONSOLE_STOPS = [  # how each console test stops its console: (signal or key, hang up)
    (signal.SIGTERM, False),
    (signal.SIGINT, False),
    (b"\x03", False),
    (b"q", False),
    (signal.SIGHUP, True),
]


@pytest.fixture(scope="module")
def consoles(tmp_path_factory) -> dict[tuple[int | bytes, bool], tuple[Path, int, bytes]]:
    """Every console test's console, each in its own pty, run side by side on threads
    (their starts of Python, torch and Textual overlap instead of queueing): per way of
    stopping it, its sessions folder, exit code and what it wrote to its terminal."""

    def one(i: int, stop: int | bytes, hang_up: bool) -> tuple[Path, int, bytes]:
        sessions = tmp_path_factory.mktemp(f"console{i}") / "s"
        return (sessions, *console(sessions, stop, hang_up))

    with ThreadPoolExecutor(len(CONSOLE_STOPS)) as pool:
        futures = {key: pool.submit(one, i, *key) for i, key in enumerate(CONSOLE_STOPS)}
        return {key: f.result() for key, f in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_console_restores_the_terminal_and_saves(consoles, capfd, sig, code):
    sessions, rc, out = consoles[(sig, False)]
    assert rc == code, out[-2000:]
    for what, (on, off) in RESTORED.items():
        assert out.rfind(off) > out.rfind(on), f"not restored: {what}"
    err = re.sub(rb"\x1b\[[0-9;?<>]*[A-Za-z]", b"", out.split(b"\x1b[?1049l")[-1]).decode()
    assert "stopped by" in err and "Traceback" not in err
    assert_resumes(sessions, err.replace("\r\n", "\n"), console=True, capfd=capfd)


@pytest.mark.slow
@pytest.mark.parametrize("key, code", [(b"\x03", 130), (b"q", 0)])
def test_ctrl_c_in_the_console_exits_130_and_q_exits_0(consoles, key, code):
    """Ctrl-C typed in the console stops the run as SIGINT does: the chunk ends, the
    snapshot is saved, the resume command is printed, and the exit code is 130, as
    headless and the README say; `q` exits 0."""
    sessions, rc, out = consoles[(key, False)]
    tail = out.split(b"\x1b[?1049l")[-1]
    text = re.sub(rb"\x1b\[[0-9;?<>]*[A-Za-z]", b"", tail).decode().replace("\r\n", "\n")
    assert rc == code, text[-2000:]
    assert "Traceback" not in text
    (folder,) = [d for d in sessions.iterdir() if d.is_dir()]
    obj = read_file(folder / "latest.pt")  # the stop saved it
    assert obj["trainer"]["epoch"] > 0 or obj["trainer"]["row"] > 0
    assert f"--resume {folder.name}" in text, text[-2000:]
    if key == b"\x03":
        assert "stopped by Ctrl-C" in text


@pytest.mark.slow
def test_closing_the_consoles_terminal_saves_the_run(consoles, capfd):
    sessions, rc, _ = consoles[(signal.SIGHUP, True)]
    assert rc == 129
    run_id, epoch, row = snapshot_position(sessions)
    assert epoch > 0 or row > 0
    rc, out, err = resume_one_more_epoch(sessions, run_id, epoch, capfd)
    assert rc == 0 and f"at epoch {epoch + 1}, row {row:,}" in out, err
