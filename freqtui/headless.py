"""`freqtui train --headless`: the same TrainingRun as the console, reported on stdout.

On a terminal: a rich progress bar. Otherwise (CI, a pipe): one plain line every few
seconds. Every epoch end prints the frozen MSE table; online loss and frozen MSE are
always labelled apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine import events as ev
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from engine.sessions import save_weights
from freqtui.cli import config_from, eval_table, fmt_seconds, set_autosave

PLAIN_EVERY_S = 5.0


def make_run(args: argparse.Namespace) -> TrainingRun:
    """A new run, or one continuing a snapshot; either saves snapshots every --autosave
    rows and when it ends, into its session folder."""
    root = getattr(args, "sessions", None)
    if getattr(args, "resume", None):
        from engine.sessions import run_from_snapshot  # the sessions module owns resuming

        run = run_from_snapshot(args.resume, overrides=args, root=root, save_on_end=True)
        if run.trainer.finished:
            raise FreqtuiError(
                f"session {run.run_id} has finished its {run.config.epochs} epoch(s); "
                f"pass --epochs {run.config.epochs + 1} (or more) to train further"
            )
    else:
        run = TrainingRun(config_from(args), sessions_root=root, save_on_end=True)
    set_autosave(run, args)
    return run


def train_headless(args: argparse.Namespace) -> int:
    run = make_run(args)
    cfg = run.config
    out: Path | None = args.out
    if out is not None and out.exists() and out.is_dir():
        raise FreqtuiError(f"{out}: is a folder; --out takes a file path")
    print(
        f"training: method {cfg.method}, backend {cfg.backend}, {cfg.epochs} epoch(s) of "
        f"{run.trainer.rows_per_epoch} rows, lr {cfg.lr:g}, phase scale {cfg.phase_scale:g}",
        flush=True,
    )
    tr = run.trainer
    where = run.sessions_root / run.run_id
    if getattr(args, "resume", None):
        print(f"resuming session {run.run_id} at epoch {tr.epoch + 1}, row {tr.row:,}", flush=True)
    print(f"session {run.run_id}: snapshots in {where}", flush=True)
    tty = sys.stdout.isatty()
    progress = _RichProgress(run) if tty else None
    failed: str | None = None
    last_plain = time.monotonic()
    last: ev.StepStats | None = None
    run.start()
    try:
        while True:
            alive = run.alive
            for e in run.drain():
                if isinstance(e, ev.StepStats):
                    last = e
                    continue
                line = _describe(e, cfg)
                if line:
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
            if not alive:
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        run.stop()
        print("interrupted: stopped after the current chunk", flush=True)
        for e in run.drain():  # the final snapshot, so the user knows what to resume
            if isinstance(e, ev.SnapshotSaved):
                print(_describe(e, cfg), flush=True)
    finally:
        if progress:
            progress.close()
    if out is not None:
        save_weights(out, run.model, cfg, history=run.history.to_dict())
        print(f"saved weights to {out}", flush=True)
    if failed:
        print(f"freqtui: training failed: {failed}", file=sys.stderr)
        return 1
    return 0


def _plain(s: ev.StepStats) -> str:
    return (
        f"epoch {s.epoch}/{s.epochs}  row {s.row:,}/{s.rows_per_epoch:,}  "
        f"{s.rows_per_s:,.0f} rows/s  online loss (weights moving) {s.online_loss:.4f}  "
        f"elapsed {fmt_seconds(s.elapsed_s)}  ETA {fmt_seconds(s.eta_s)}"
    )


def _describe(e: ev.Event, cfg) -> str | None:
    if isinstance(e, ev.StateCheckDone):
        return f"state check {'passed' if e.passed else 'FAILED'}: {e.detail}"
    if isinstance(e, ev.Compiling):
        if e.done:
            how = "loaded from cache" if e.cached else "compiled"
            return f"{e.backend} kernels {how} in {e.seconds:.1f} s"
        return f"compiling the {e.backend} kernels (first run only; cached afterwards)..."
    if isinstance(e, ev.EpochDone):
        return f"epoch {e.epoch} done: mean online loss (weights moving) {e.online_loss:.4f}"
    if isinstance(e, ev.EvalDone):
        return eval_table(e.train, e.test, cfg.frequencies)
    if isinstance(e, ev.Warning):
        return f"warning: {e.message}"
    if isinstance(e, ev.SnapshotSaved):
        return f"snapshot saved ({e.reason}): {e.path}"
    if isinstance(e, ev.Finished):
        return f"{'stopped' if e.stopped else 'finished'} after {e.rows_total:,} rows"
    return None


class _RichProgress:
    def __init__(self, run: TrainingRun) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s  online loss {task.fields[loss]}"),
            TimeRemainingColumn(),
        )
        self.console = self.progress.console
        total = run.config.epochs * run.trainer.rows_per_epoch
        self.task = self.progress.add_task("train", total=total, epoch="1", rate="-", loss="-")
        self.progress.start()

    def update(self, s: ev.StepStats) -> None:
        done = (s.epoch - 1) * s.rows_per_epoch + s.row
        self.progress.update(
            self.task,
            completed=done,
            epoch=f"{s.epoch}/{s.epochs}",
            rate=f"{s.rows_per_s:,.0f}",
            loss=f"{s.online_loss:.4f}",
        )

    def close(self) -> None:
        self.progress.stop()
