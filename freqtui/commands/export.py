"""`freqtui export ID|PATH [--csv|--json] [--out FILE]`: the whole metric history of a
session or snapshot (freqtui/export.py writes it), on stdout or in a file."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.store.writable import check_out
from freqtui.export import export_text, write


def format_for(out: Path | None, json_flag: bool, csv_flag: bool) -> str:
    """--json or --csv; without either, the suffix of --out (.json), else CSV."""
    if json_flag:
        return "json"
    if csv_flag or out is None:
        return "csv"
    return "json" if out.suffix.lower() == ".json" else "csv"


def export(
    target: str,
    out: Path | None = None,
    *,
    as_json: bool = False,
    as_csv: bool = False,
    sessions: Path | None = None,
) -> int:
    """The metric history of the session or snapshot `target` names, on stdout or in
    `out` (checked before any work)."""
    from engine.export import file_metric_table
    from engine.store.files import read
    from engine.store.sessions import resolve, sessions_dir

    fmt = format_for(out, as_json, as_csv)
    path = resolve(target, sessions_dir(sessions))
    if out is not None:  # a folder, a device or a read-only place: one line, before any work
        check_out(out, "--out", "the metric history")
    table = file_metric_table(read(path))
    text = export_text(table, fmt)
    if out is None:
        sys.stdout.write(text)
        return 0
    write(out, text)
    sys.stderr.write(f"wrote {out}: {len(table.rows):,} rows ({fmt})\n")
    return 0
