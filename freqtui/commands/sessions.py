"""`freqtui sessions rm ID…`: delete saved sessions. Every id is checked first (a session
folder inside the sessions folder, not live: engine/store/sessions.py); then, on a terminal,
one question lists what goes; `--yes` skips it, and without a terminal `--yes` is needed.
Nothing is deleted when any id is refused."""

from __future__ import annotations

import argparse
import sys

from engine.errors import FreqtuiError
from engine.store.sessions import check_deletable, delete_session, sessions_dir


def confirm(question: str) -> bool:
    """Ask on the terminal; only y or yes agrees. End of input is a no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_sessions_rm(args: argparse.Namespace) -> int:
    root = sessions_dir(getattr(args, "sessions", None))
    ids = list(dict.fromkeys(args.ids))  # one id named twice is deleted once
    folders = [check_deletable(run_id, root) for run_id in ids]
    if not args.yes:
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
