"""One sweep cell trained for a while, wherever it runs: the snapshot goes in and comes
back as bytes, so the process that trains it needs no shared disk.

`train_cell` builds the cell's TrainingRun (new, or continuing the snapshot it was given),
trains until the cell finishes, its time budget is spent or `should_stop()` says so, and
returns the new snapshot's bytes. The run stops between two chunks of rows, so stopping
and continuing from the returned bytes is the same run (sessions resume exactly).

`cell_task` is the same on a Dask worker: Dask is imported there, when it runs, and torch
only when a cell trains, so the driver that sends it loads neither for it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import events as ev
from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.limits import STOP_WAIT_S
from engine.store.files import atomic_write_bytes, sealed_bytes
from engine.store.sessions import LATEST

POLL_S = 0.2


@dataclass(frozen=True)
class CellChunk:
    """What one stretch of a cell's training returns to the driver."""

    cell: str
    snapshot: bytes | None  # None when nothing was trained (stopped before it began)
    finished: bool
    rows: int  # rows trained in this stretch
    seconds: float
    failed: str | None = None


def progress_of(cell: str, s: ev.StepStats) -> dict[str, Any]:
    """A StepStats as the small plain dict a cell reports while it trains."""
    return {
        "cell": cell,
        "epoch": s.epoch,
        "epochs": s.epochs,
        "row": s.row,
        "rows_per_epoch": s.rows_per_epoch,
        "rows_per_s": s.rows_per_s,
        "online_loss": s.online_loss,
        "eta_s": s.eta_s,
    }


def train_cell(
    config: dict[str, Any],
    cell: str,
    snapshot: bytes | None,
    *,
    budget_s: float,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every_s: float = 1.0,
) -> CellChunk:
    """Train cell `cell` (run id and session folder name) for at most about `budget_s`
    seconds, from `snapshot` (the bytes of its latest.pt) or from scratch with `config`."""
    from engine.run import TrainingRun  # torch: where the cell trains, not in the driver

    t0 = time.monotonic()
    if should_stop():
        return CellChunk(cell, None, False, 0, 0.0)
    with tempfile.TemporaryDirectory(prefix="freqtui-cell-") as tmp:
        root = Path(tmp)
        if snapshot is not None:
            path = root / cell / LATEST
            atomic_write_bytes(path, snapshot)
            run = TrainingRun.resume(path, root=root)
        else:
            run = TrainingRun(RunConfig.from_dict(config), run_id=cell, sessions_root=root)
        if run.trainer.finished:
            return CellChunk(cell, snapshot, True, 0, 0.0)
        rows_before = run.history.rows_total
        failed: str | None = None
        last_progress = 0.0
        run.start()
        try:
            while run.alive:
                time.sleep(POLL_S)
                stats = None
                for e in run.drain():
                    if isinstance(e, ev.StepStats):
                        stats = e
                    elif isinstance(e, ev.Failed):
                        failed = e.message
                now = time.monotonic()
                if stats is not None and progress and now - last_progress >= progress_every_s:
                    progress(progress_of(cell, stats))
                    last_progress = now
                if now - t0 >= budget_s or should_stop():
                    break
        finally:
            run.stop(timeout=STOP_WAIT_S)  # ends after the current chunk (or evaluation)
        for e in run.drain():
            if isinstance(e, ev.Failed):
                failed = e.message
        if failed is not None:
            return CellChunk(cell, None, False, 0, time.monotonic() - t0, failed=failed)
        try:
            data = sealed_bytes(run.snapshot())  # its run id is the cell's
        except FreqtuiError as exc:
            raise FreqtuiError(f"cell {cell}: {exc}") from None
        return CellChunk(
            cell,
            data,
            run.trainer.finished,
            run.history.rows_total - rows_before,
            time.monotonic() - t0,
        )


def cell_task(
    config: dict[str, Any],
    cell: str,
    snapshot: bytes | None,
    budget_s: float,
    topic: str,
    stop_name: str,
    key: str,
):
    """Runs on a Dask worker: train the cell for a while, report progress as worker
    events on `topic` (each tagged with this stretch's `key`), stop early once the sweep's
    Event `stop_name` is set."""
    from distributed import Event, get_worker

    worker = get_worker()
    worker.log_event(topic, {"cell": cell, "key": key, "started": True})
    stop = Event(stop_name)
    checked = [0.0, False]

    def should_stop() -> bool:
        now = time.monotonic()
        if not checked[1] and now - checked[0] >= 1.0:  # one scheduler round trip a second
            checked[0] = now
            checked[1] = bool(stop.is_set())
        return bool(checked[1])

    return train_cell(
        config,
        cell,
        snapshot,
        budget_s=budget_s,
        should_stop=should_stop,
        progress=lambda msg: worker.log_event(topic, {**msg, "key": key}),
    )
