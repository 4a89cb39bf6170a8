"""Check before you train: prove a folder can take a file before any row is trained.

`probe(folder)` creates the folder if needed, then creates, writes, fsyncs and removes a
small probe file in it; any failure is a FreqtuiError on one line. `check_out(path)`
does the same for the folder of a weights file and refuses a path that is a folder or
not a regular file (an atomic write would rename a temporary file over /dev/null).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from engine.errors import FreqtuiError

PROBE_BYTES = 4096


def probe(folder: Path, what: str = "snapshots") -> None:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FreqtuiError(f"{folder}: cannot save {what} there ({_why(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise FreqtuiError(f"{folder}: cannot save {what} there ({_why(exc)})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def check_out(path: Path) -> None:
    """--out FILE: a regular file or a new one, in a folder that takes a file."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise FreqtuiError(f"{path}: cannot write it ({_why(exc)})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise FreqtuiError(f"{path}: is a folder; --out takes a file path")
    if mode is not None and not stat.S_ISREG(mode):
        raise FreqtuiError(
            f"{path}: not a regular file (a device, fifo or socket); --out takes a file path"
        )
    probe(path.parent if str(path.parent) else Path("."), "weights")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def newest_on_disk(folder: Path) -> str:
    """Which snapshot of a session survived a failed save, as a sentence."""
    from engine.files import read_file  # late: these import torch
    from engine.sessions import LATEST, PREVIOUS, session_info

    for name in (LATEST, PREVIOUS):
        path = Path(folder) / name
        try:
            info = session_info(path, read_file(path))
        except (FreqtuiError, OSError, KeyError, TypeError, ValueError):
            continue
        return (
            f"the newest snapshot on disk is {path} (epoch {info.epoch}, row {info.row:,}, "
            f"saved at {info.saved_at})"
        )
    return f"no snapshot of this run is on disk in {folder}"
