"""`freqtui train --headless`: the same TrainingRun as the console, reported on stdout.

On a terminal: a rich progress bar. Otherwise (CI, a pipe): one plain line every few
seconds. Every epoch end prints the frozen MSE table; online loss and frozen MSE are
always labelled apart.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path

from engine import events as ev
from engine.errors import FreqtuiError
from engine.run import RunView, TrainingRun
from engine.store.sessions import LATEST
from freqtui.shutdown import (
    STOP_WAIT_S,
    StopSignals,
    exit_code,
    quiet_stdout,
    save_failure_lines,
    say,
    stop_lines,
)
from freqtui.text import (
    PLAIN_EVERY_S,
    describe,
    epochs_text,
    eval_table,
    exit_message,
    fmt_int,
    fmt_seconds,
)


def train_headless(run: TrainingRun, out: Path | None = None, *, resumed: bool = False) -> int:
    """Train `run` (new, or continuing a snapshot: `resumed`) to its end on stdout; save
    the weights to `out` if given. The CLI builds the run."""
    view = run.view()
    cfg = view.config
    if resumed and view.finished:
        raise FreqtuiError(
            f"session {run.run_id} has finished its {view.planned_epochs} epoch(s); "
            f"pass --epochs {cfg.epochs + 1} (or more) to train further"
        )
    run.claim(out)  # own the session, prove its folder and --out's can take a file
    # the stop signals are ours from the first line a user (or a test) can react to
    stopper = StopSignals()
    with stopper:
        print(
            f"training: method {cfg.method}, backend {view.backend}, {epochs_text(view)}, "
            f"lr {cfg.lr:g}, phase scale {cfg.phase_scale:g}",
            flush=True,
        )
        where = run.sessions_root / run.run_id
        if resumed:
            print(
                f"resuming session {run.run_id} at epoch {view.epoch}, row {view.row:,}",
                flush=True,
            )
        print(f"session {run.run_id}: snapshots in {where}", flush=True)
        if run.origin:  # a models/ file: continued in a new session, itself never written
            print(run.origin, flush=True)
        tty = sys.stdout.isatty()
        progress = _RichProgress(view) if tty else None
        run.start()
        code = _follow(run, cfg, progress, stopper)
    if out is not None:
        try:
            run.save_weights(out)
        except OSError as exc:
            say(f"freqtui: error: {out}: weights not saved ({exc.strerror or exc})")
            code = code or 1
        else:
            with contextlib.suppress(OSError):  # stdout may be gone (a closed pipe, SIGHUP)
                print(f"saved weights to {out}", flush=True)
    return code


def _follow(run: TrainingRun, cfg, progress, stopper: StopSignals) -> int:
    """Show the run's events until it ends or a signal stops it; the exit code."""
    failed: str | None = None
    last_plain = time.monotonic()
    last: ev.StepStats | None = None
    try:
        while True:
            alive = run.alive
            for e in ev.collapse(run.drain()):
                if isinstance(e, ev.StepStats):
                    last = e
                    continue
                line = _line(e, cfg.frequencies)
                if isinstance(e, ev.SaveFailed):  # a problem: stderr, once
                    say(f"freqtui: warning: {line}")
                elif line:
                    if progress:
                        progress.console.print(line)
                    else:
                        print(line, flush=True)
                if isinstance(e, ev.Failed):
                    failed = e.message
            if last is not None:
                if progress:
                    progress.update(last)
                elif time.monotonic() - last_plain >= PLAIN_EVERY_S:
                    print(_plain(last), flush=True)
                    last_plain = time.monotonic()
            if not alive or stopper.signum is not None:
                break
            stopper.event.wait(0.1)
    except OSError:  # stdout is gone (a closed pipe, a hung-up terminal): stop, save, quietly
        quiet_stdout()
        stopper.signum = stopper.signum or signal.SIGPIPE
    finally:
        with contextlib.suppress(OSError):
            if progress:
                progress.close()
    if stopper.signum is not None:
        run.stop(timeout=STOP_WAIT_S)  # the chunk ends, the worker saves; signals wait
        for e in run.drain():  # the final snapshot, so the user knows what to resume
            if isinstance(e, (ev.SnapshotSaved, ev.SaveFailed)):
                say(_line(e, cfg.frequencies) or "")
        say(*stop_lines(run, stopper.signum, console=False), *save_failure_lines(run))
        return exit_code(stopper.signum)
    if failed:
        say(f"freqtui: training failed: {failed}", *save_failure_lines(run))
        return 1
    lines = save_failure_lines(run)
    say(*lines)
    end = run.view()
    print(
        exit_message(
            run.run_id,
            run.sessions_root,
            saved=(run.sessions_root / run.run_id / LATEST).exists(),
            finished=end.finished,
            epochs=end.planned_epochs,
            headless=True,
            save_failed=bool(lines),
        ),
        flush=True,
    )
    return 1 if lines else 0


# what the console shows on its own (a pause, an evaluation starting) stays off stdout;
# a failure goes to stderr at the end
_QUIET = (ev.EvalStarted, ev.Paused, ev.Resumed, ev.Failed)


def _line(e: ev.Event, frequencies: tuple[float, ...]) -> str | None:
    """An event as a line (or, for a frozen evaluation, its table) on stdout."""
    if isinstance(e, ev.EvalDone):
        return eval_table(e.train, e.test, frequencies)
    if isinstance(e, _QUIET):
        return None
    line = describe(e)
    return None if line is None else line.text


def _plain(s: ev.StepStats) -> str:
    return (
        f"epoch {s.epoch}/{s.epochs}  row {s.row:,}/{s.rows_per_epoch:,}  "
        f"{s.rows_per_s:,.0f} rows/s  online loss (weights moving) {s.online_loss:.4f}  "
        f"elapsed {fmt_seconds(s.elapsed_s)}  ETA {fmt_seconds(s.eta_s)}"
    )


class _RichProgress:
    def __init__(self, view: RunView) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("row {task.fields[row]}"),
            TextColumn("{task.fields[rate]} rows/s  online loss {task.fields[loss]}"),
            TextColumn("ETA {task.fields[eta]}"),
        )
        self.console = self.progress.console
        total = view.planned_epochs * view.rows_per_epoch
        self.task = self.progress.add_task(
            "train", total=total, epoch="1", row="-", rate="-", loss="-", eta="-"
        )
        self.progress.start()

    def update(self, s: ev.StepStats) -> None:
        done = (s.epoch - 1) * s.rows_per_epoch + s.row
        self.progress.update(
            self.task,
            completed=done,
            epoch=f"{s.epoch}/{s.epochs}",
            # the epoch's position, as the console's status line counts it
            row=f"{fmt_int(s.row)}/{fmt_int(s.rows_per_epoch)}",
            eta=fmt_seconds(s.eta_s),
            rate=f"{s.rows_per_s:,.0f}",
            loss=f"{s.online_loss:.4f}",
        )

    def close(self) -> None:
        self.progress.stop()
