"""How a run ends without losing work, for the headless CLI and the console. (It starts
safely through the engine: `TrainingRun.claim` owns its session and proves its folder
writable before the first row.)

- `StopSignals`: SIGINT, SIGTERM and SIGHUP only record which signal came first; the
  driver then stops the run like Ctrl-C (finish the chunk, save, report) and exits with
  128 + the signal number. A handler never raises, so a second signal cannot abort a
  save in progress.
- `on_terminal_gone`: a write to the terminal failing (Textual's writer thread dying with
  OSError) stops the run as SIGHUP does; the console then ends within EXIT_GRACE_S of the
  save, even when Textual's writer is stuck on a terminal that is gone.
- `stop_and_save`: the engine side of a stop, safe from any thread: no widget is touched,
  so it works while the UI thread is blocked, and the console's `q` and `o` run it off
  the UI thread.
- `stop_lines` / `save_failure_lines`: what the user reads at the end, on stderr.
- `quiet_stdout`: stdout is gone (a closed pipe, a hung-up terminal); the last flush must
  not fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from engine.errors import FreqtuiError
from engine.events import RunState
from engine.limits import STOP_WAIT_S
from engine.store import writable
from freqtui.text import resume_command as format_resume_command

if TYPE_CHECKING:
    from engine.run import TrainingRun

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_GRACE_S = 3.0  # after that save, the console's own way out (terminal restored) may take this
TEXTUAL_WRITER = "textual-output"  # the name of Textual's thread that writes to the terminal


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
        self.terminal_gone = threading.Event()  # a write to the terminal failed
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.trigger(signum)

    def trigger(self, signum: int) -> None:
        """Stop as if `signum` had arrived (first one wins)."""
        if self.signum is None:
            self.signum = signum
        self.event.set()

    def __enter__(self) -> StopSignals:
        for s in SIGNALS:
            self._old[s] = signal.signal(s, self._handle)
        return self

    def claim(self) -> None:
        """Take the stop signals back from whoever took them since (Textual's web driver
        takes SIGINT and SIGTERM for its event loop, and closing that loop resets them)."""
        for s in SIGNALS:
            signal.signal(s, self._handle)

    def __exit__(self, *exc: object) -> None:
        # after a stop, keep ignoring the stop signals until the process ends: a late one
        # must not cut the report short (SIGINT would raise KeyboardInterrupt). Without
        # one, the old handlers return: a process that trained in-process (a test) must
        # not leave its children ignoring SIGTERM
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN if self.signum is not None else self._old[s])


def on_terminal_gone(stop: StopSignals) -> None:
    """A write to the terminal that fails stops the run as SIGHUP does. Textual writes from
    its own thread; when the terminal is gone that thread dies of the OSError and every
    later write of the UI thread blocks on its full queue, so nothing else would notice."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = args.thread
        if (
            thread is not None
            and thread.name == TEXTUAL_WRITER
            and issubclass(args.exc_type, OSError)
        ):
            stop.terminal_gone.set()
            stop.trigger(signal.SIGHUP)  # nothing printed: stderr is that terminal
            return
        previous(args)

    threading.excepthook = hook


def stop_and_save(run: TrainingRun, reason: str, timeout: float = STOP_WAIT_S) -> str | None:
    """Stop the worker (the engine saves at the end of a console run), then save what is
    still unsaved unless the run failed, could not stop (`run.alive` says so afterwards),
    or the engine already saved exactly this state. From any thread (the console's `q`
    and `o` call it from one of their own); returns why the save failed, if it did (a
    failed write is kept in `run.save_error` too)."""
    run.stop(timeout=timeout)
    if run.alive or run.status is RunState.FAILED or not run.unsaved_rows:
        return None
    try:
        run.save_snapshot(reason)
    except FreqtuiError as exc:
        return str(exc)
    return None


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


def say(*lines: str, stream: TextIO | None = None) -> None:
    """Lines on stderr (or `stream`); a terminal that is gone (SIGHUP) must not stop what
    follows."""
    out = stream or sys.stderr
    for line in lines:
        with contextlib.suppress(OSError, ValueError):
            out.write(line + "\n")
            out.flush()


def quiet_stdout() -> None:
    """Send what is left of stdout to /dev/null, so the final flush cannot fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
