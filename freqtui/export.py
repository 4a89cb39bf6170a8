"""A run's metric history (engine/export.py builds the table) written as CSV or JSON: for
`freqtui export` (freqtui/commands/export.py) and the console's `x` key."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from engine.export import COLUMN_NAMES, COLUMNS, MetricTable
from engine.store.files import atomic_write_bytes
from engine.store.writable import check_out

if TYPE_CHECKING:
    from engine.run import TrainingRun

FORMATS = ("csv", "json")
CONSOLE_NAME = "history"  # the `x` key writes history.csv and history.json in the session folder


def columns_help(width: int = 79) -> str:
    """The columns as `freqtui export --help` lists them, wrapped to `width`."""
    pad = max(len(name) for name, _ in COLUMNS) + 4
    lines = ["columns (one row per value):"]
    for name, text in COLUMNS:
        lines.append(
            textwrap.fill(
                text, width, initial_indent=f"  {name:<{pad - 2}}", subsequent_indent=" " * pad
            )
        )
    return "\n".join(lines)


def export_text(table: MetricTable, fmt: str) -> str:
    """The table as CSV (a header of COLUMNS, one row per value) or as a JSON document
    (what it is from, the columns with their meaning, and the rows as records)."""
    if fmt == "json":
        doc = {
            "run_id": table.run_id,
            "method": table.method,
            "frequencies_hz": list(table.frequencies),
            "rows_per_epoch": table.rows_per_epoch,
            "columns": dict(COLUMNS),
            "rows": [{k: (None if r[k] == "" else r[k]) for k in COLUMN_NAMES} for r in table.rows],
        }
        return json.dumps(doc, indent=1) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMN_NAMES, lineterminator="\n")
    w.writeheader()
    w.writerows(table.rows)
    return buf.getvalue()


def write(path: Path, text: str) -> None:
    from engine.errors import FreqtuiError

    try:
        atomic_write_bytes(path, text.encode())
    except OSError as exc:
        raise FreqtuiError(f"{path}: not written ({exc.strerror or exc})") from None


def export_run(run: TrainingRun) -> list[Path]:
    """The console's `x`: the run's metric history as it stands, as history.csv and
    history.json in its session folder (checked first); the paths written."""
    from engine.export import metric_table
    from engine.history import History

    with run.locked():  # between two chunks: the history is consistent
        history = History.from_dict(run.history.to_dict())
    table = metric_table(
        history,
        run.config,
        run_id=run.run_id,
        rows_per_epoch=run.rows_per_epoch,
        blocks_together=run.trainer.blocks_together,
    )
    folder = run.sessions_root / run.run_id
    paths = [folder / f"{CONSOLE_NAME}.{fmt}" for fmt in FORMATS]
    for path in paths:
        check_out(path, "the export", "the metric history")
    for path, fmt in zip(paths, FORMATS, strict=True):
        write(path, export_text(table, fmt))
    return paths
