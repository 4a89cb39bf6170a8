"""`freqtui eval PATH|ID [--json]`: the frozen MSE of saved weights or a snapshot."""

from __future__ import annotations

import json
from pathlib import Path

from engine.store.sessions import resolve, sessions_dir
from freqtui.text import eval_json, eval_table


def evaluate_file(target: str, as_json: bool = False, sessions: Path | None = None) -> int:
    """Evaluate the file `target` names (a path, or a session id in `sessions`) frozen,
    and print the table (or JSON)."""
    from engine.store.files import read

    path = resolve(target, sessions_dir(sessions))
    snap = read(path)  # a file refused before torch.load is refused without torch
    from engine.evaluation import evaluate

    config = snap.config
    result = evaluate(snap.build_model(), config)
    note = snap.weights_note
    if as_json:
        print(json.dumps(eval_json(path, config, result, note), indent=2))
    else:
        print(f"{path}: method {config.method}, phase scale {config.phase_scale:g}")
        print(f"weights: {note}")
        print(eval_table(result.train, result.test, config.frequencies))
    return 0
