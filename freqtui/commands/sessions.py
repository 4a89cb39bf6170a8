"""`freqtui sessions [--json]`: the saved sessions, from their sidecars.

`freqtui sessions rm ID…`: delete saved sessions. Every id is checked first (a session
folder inside the sessions folder, not live: engine/store/sessions.py); then, on a terminal,
one question lists what goes; `--yes` skips it, and without a terminal `--yes` is needed.
Nothing is deleted when any id is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.errors import FreqtuiError
from engine.store.sessions import check_deletable, delete_session, list_sessions, sessions_dir
from freqtui.text import sessions_table


def show(as_json: bool = False, sessions: Path | None = None) -> int:
    """List the sessions in `sessions` (default: $FREQTUI_SESSIONS, else ./sessions)."""
    root = sessions_dir(sessions)
    infos = list_sessions(root)
    if as_json:
        rows = [
            {**{k: v for k, v in vars(i).items() if k != "path"}, "path": str(i.path)}
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not infos:
        print(f"no sessions in {root}")
        return 0
    print(sessions_table(infos))
    return 0


def confirm(question: str) -> bool:
    """Ask on the terminal; only y or yes agrees. End of input is a no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def remove(ids: list[str], yes: bool = False, sessions: Path | None = None) -> int:
    """Delete the sessions `ids` (asking first on a terminal, unless `yes`)."""
    root = sessions_dir(sessions)
    ids = list(dict.fromkeys(ids))  # one id named twice is deleted once
    folders = [check_deletable(run_id, root) for run_id in ids]
    if not yes:
        if not sys.stdin.isatty():
            raise FreqtuiError(
                "sessions rm: no terminal to confirm on; add --yes to delete without asking"
            )
        names = ", ".join(f.name for f in folders)
        if not confirm(f"delete {len(folders)} session(s) in {root}: {names}?"):
            print("nothing deleted")
            return 0
    for run_id in ids:
        print(f"deleted {delete_session(run_id, root)}")
    return 0
