"""How a run starts safely and ends without losing work, for the headless CLI and the console.

- `preflight(run, out)`: before the first row, own the session (engine/lock.py: a second
  process gets one line naming the holder) and prove its folder, and --out's folder, can
  take a file (engine/writable.py).
- `StopSignals`: SIGINT, SIGTERM and SIGHUP only record which signal came first; the
  driver then stops the run like Ctrl-C (finish the chunk, save, report) and exits with
  128 + the signal number. A handler never raises, so a second signal cannot abort a
  save in progress.
- `stop_lines` / `save_failure_lines`: what the user reads at the end, on stderr.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from engine import lock, writable
from freqtui.format import resume_command as format_resume_command

if TYPE_CHECKING:
    from engine.run import TrainingRun

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_WAIT_S = 600.0  # a stop waits this long for the chunk and the final save


def preflight(run: TrainingRun, out: Path | None = None) -> lock.SessionLock:
    """Own the run's session and prove its folder (and --out's) writable; FreqtuiError."""
    folder = run.sessions_root / run.run_id
    if out is not None:
        writable.check_out(out)
    writable.probe(folder)
    return lock.acquire(folder)


def exit_code(signum: int) -> int:
    return 128 + signum


def signal_name(signum: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(signum).name
    return f"signal {signum}"


class StopSignals:
    """Record the first of SIGINT, SIGTERM and SIGHUP instead of dying (main thread only)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.event = threading.Event()
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    def __enter__(self) -> StopSignals:
        for s in SIGNALS:
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        # after a stop, keep ignoring the stop signals until the process ends: a late one
        # must not cut the report short (SIGINT would raise KeyboardInterrupt). Without
        # one, the old handlers return: a process that trained in-process (a test) must
        # not leave its children ignoring SIGTERM
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN if self.signum is not None else self._old[s])


def resume_command(run: TrainingRun, console: bool) -> str:
    return format_resume_command(run.run_id, run.sessions_root, headless=not console)


def stop_lines(run: TrainingRun, signum: int, console: bool) -> list[str]:
    how = "Ctrl-C" if signum == signal.SIGINT else signal_name(signum)
    saved = "" if run.save_error else " and saved"
    return [
        f"freqtui: stopped by {how} after the current chunk{saved}: session {run.run_id}",
        f"freqtui: resume with: {resume_command(run, console)}",
    ]


def save_failure_lines(run: TrainingRun) -> list[str]:
    """Empty when the newest state is on disk; else why not and what survived."""
    if not run.save_error:
        return []
    return [
        f"freqtui: error: the last snapshot was not saved: {run.save_error}",
        f"freqtui: {writable.newest_on_disk(run.sessions_root / run.run_id)}",
    ]


def say(*lines: str) -> None:
    """Lines on stderr; a terminal that is gone (SIGHUP) must not stop what follows."""
    for line in lines:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
