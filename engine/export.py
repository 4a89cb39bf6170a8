"""A run's whole metric history as one table: what `freqtui export` and the console's `x`
key write (as CSV or JSON, freqtui/export.py).

One row per value, so every kind of measure shares the columns (`COLUMNS`, the one place
they are documented): the smoothed online loss at each logged chunk (weights moving),
overall and per frequency; each epoch's mean online loss; every frozen evaluation
(weights fixed) on train and test, overall and per frequency, with the epoch and row it
was taken at; and each change of the method's schedule, one row per setting. Online loss
and frozen MSE are never in one row. Torch-free: the table is built from a History.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.config import RunConfig
from engine.history import History

if TYPE_CHECKING:
    from engine.store.snapshot import Snapshot

# (column, what it holds): `freqtui export --help` and the README print these
COLUMNS: tuple[tuple[str, str], ...] = (
    (
        "kind",
        "online (smoothed online loss at a logged chunk, weights moving), epoch (an "
        "epoch's mean online loss), frozen (a frozen MSE, weights fixed), schedule (a "
        "setting of the method's schedule when it changed)",
    ),
    ("epoch", "the 1-based epoch being trained at that point"),
    ("row", "rows done in that epoch (an epoch's end: all its rows)"),
    ("rows_total", "rows trained since the run began"),
    ("set", "frozen: train (noise seed set 1) or test (seed set 2); empty otherwise"),
    ("frequency_hz", "the frequency block the value is for, or all (every block)"),
    ("value", "the loss or MSE (empty for a schedule row)"),
    ("trained_hz", "online: the block of the chunk's last row (all: every block at once)"),
    ("setting", "schedule: the setting's name (phase, horizon, lr, restarts ...)"),
    ("setting_value", "schedule: its value from that point on, as the console shows it"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)


@dataclass(frozen=True)
class MetricTable:
    """The rows of a run's metric history and what they are from."""

    run_id: str
    method: str
    frequencies: tuple[float, ...]
    rows_per_epoch: int
    rows: list[dict[str, Any]]  # each with every column of COLUMN_NAMES


def _hz(f: float) -> str:
    return f"{f:g}"


def position(rows_total: int, rows_per_epoch: int) -> tuple[int, int]:
    """(epoch, row) of a point `rows_total` rows into a run: an epoch's last row is that
    epoch's, as its end-of-epoch evaluation records it."""
    if rows_total <= 0 or rows_per_epoch <= 0:
        return 1, max(0, rows_total)
    epoch = (rows_total - 1) // rows_per_epoch + 1
    return epoch, rows_total - (epoch - 1) * rows_per_epoch


def metric_table(
    history: History,
    config: RunConfig,
    *,
    run_id: str,
    rows_per_epoch: int,
    blocks_together: bool = False,
) -> MetricTable:
    """Every value of `history` as rows of COLUMNS, oldest first within each kind."""
    hz = [_hz(f) for f in config.frequencies]
    out: list[dict[str, Any]] = []

    blank = dict.fromkeys(COLUMN_NAMES, "")

    def row(kind: str, epoch: int, r: int, total: int, **cells: Any) -> None:
        out.append({**blank, **cells, "kind": kind, "epoch": epoch, "row": r, "rows_total": total})

    by_block = (
        history.online_by_block if len(history.online_by_block) == len(history.online) else []
    )
    for i, (total, block, loss) in enumerate(history.online):
        epoch, r = position(total, rows_per_epoch)
        trained = "all" if blocks_together else (hz[block] if 0 <= block < len(hz) else "")
        row("online", epoch, r, total, frequency_hz="all", value=loss, trained_hz=trained)
        for b, v in enumerate(by_block[i] if by_block else ()):
            if v is not None and b < len(hz):
                row("online", epoch, r, total, frequency_hz=hz[b], value=v, trained_hz=trained)
    for epoch, loss, per in history.epochs:
        total = epoch * rows_per_epoch
        row("epoch", epoch, rows_per_epoch, total, frequency_hz="all", value=loss)
        for b, v in enumerate(per):
            if v is not None and b < len(hz):
                row("epoch", epoch, rows_per_epoch, total, frequency_hz=hz[b], value=v)
    for e in history.evals:
        for name, m in (("train", e.train), ("test", e.test)):
            at = (e.epoch, e.row, e.rows_total)
            row("frozen", *at, set=name, frequency_hz="all", value=m.overall)
            for b, v in enumerate(m.per_block):
                if b < len(hz):
                    row("frozen", *at, set=name, frequency_hz=hz[b], value=v)
    for total, epoch, r, pairs in history.schedule:
        for label, value in pairs:
            row("schedule", epoch, r, total, setting=label, setting_value=value)
    return MetricTable(run_id, config.method, tuple(config.frequencies), rows_per_epoch, out)


def file_metric_table(snap: Snapshot) -> MetricTable:
    """The table of a file (a snapshot, or a weights file saved with its history); a
    file without a history has an empty one."""
    from engine.training import get_method  # torch is loaded already: the file was read

    return metric_table(
        snap.history,
        snap.config,
        run_id=snap.run_id,
        rows_per_epoch=snap.rows_per_epoch,
        blocks_together=get_method(snap.method).blocks_together,
    )
