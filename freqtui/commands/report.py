"""`freqtui report`: the spec's Graph 1 and Graph 2 as PNG files, plus metrics.json.

Everything shown is frozen MSE (weights fixed, rows in order from a zero state), the same
numbers `freqtui eval --json` prints for the same file. The figures are drawn in
freqtui/charts.py (presentation, not engine/).
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import FreqtuiError
from engine.store.files import atomic_write_bytes
from engine.store.sessions import resolve, sessions_dir
from engine.store.writable import check_out_folder
from freqtui.charts import (
    DIAGNOSTICS,
    GRAPH1,
    GRAPH2,
    GRAPH2_ZOOM,
    ZOOM_S,
    diagnostics,
    graph1,
    graph2,
)
from freqtui.text import eval_json

METRICS = "metrics.json"
FIGURES = (GRAPH1, GRAPH2, GRAPH2_ZOOM, DIAGNOSTICS)


def write_report(path: Path, out: Path) -> list[Path]:
    """Read a snapshot or weights file, evaluate it frozen, and write the three files.
    The file is read and checked before anything is written; what is at `out` is
    checked before the file is read (reading it loads torch)."""
    out = Path(out)
    names = [*FIGURES, METRICS]
    check_out_folder(out, names, "--out", "the report", probe_folder=False)  # writes nothing
    from engine.evaluation import evaluate
    from engine.signals import test_set
    from engine.store.files import read

    snap = read(path)
    config, model = snap.config, snap.build_model()
    check_out_folder(out, names, "--out", "the report")
    result = evaluate(model, config)
    test = test_set(config)
    figures = {
        GRAPH1: graph1(test, result),
        GRAPH2: graph2(test, result),
        GRAPH2_ZOOM: graph2(test, result, seconds=ZOOM_S),
        DIAGNOSTICS: diagnostics(test, result),
    }
    metrics = eval_json(path, config, result, snap.weights_note)
    written = []
    try:
        for name, data in figures.items():
            atomic_write_bytes(out / name, data)
            written.append(out / name)
        atomic_write_bytes(out / METRICS, (json.dumps(metrics, indent=2) + "\n").encode())
        written.append(out / METRICS)
    except OSError as exc:
        raise FreqtuiError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return written


def report(target: str, out: Path, sessions: Path | None = None) -> int:
    """`freqtui report PATH|ID --out DIR`: the files written, one line each."""
    for p in write_report(resolve(target, sessions_dir(sessions)), out):
        print(f"wrote {p}")
    return 0
