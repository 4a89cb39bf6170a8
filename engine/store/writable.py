"""Check before you train: prove a folder can take a file before any row is trained.

`probe(folder)` creates the folder if needed, then creates, writes, fsyncs and removes a
small probe file in it; any failure is a FreqtuiError on one line. `check_out(path)`
does the same for the folder of any file the tool writes and refuses a path that is a
folder, a symbolic link or not a regular file (an atomic write would rename a temporary
file over /dev/null); `check_out_folder` checks an output folder and its files.
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
        fd, name = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=".tmp", dir=folder)
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


def check_out(path: Path, flag: str = "--out", what: str = "weights") -> None:
    """A file the tool is about to write (--out, --png, a report's or a sweep's files, the
    CSV files): a regular file or a new one, in a folder that takes a file. A folder, a
    device, a fifo or a socket is refused, and so is a symbolic link: the atomic write
    would replace the link itself, not what it points to."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise FreqtuiError(f"{path}: cannot write it ({_why(exc)})") from None
    if st is not None:
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            raise FreqtuiError(
                f"{path}: is a symbolic link; {flag} takes the path of a file, not of a link"
            )
        if stat.S_ISDIR(mode):
            raise FreqtuiError(f"{path}: is a folder; {flag} takes a file path")
        if not stat.S_ISREG(mode):
            raise FreqtuiError(
                f"{path}: not a regular file (a device, fifo or socket); {flag} takes a file path"
            )
    probe(path.parent if str(path.parent) else Path("."), what)


def check_out_folder(folder: Path, names: list[str], flag: str, what: str) -> None:
    """An output folder and the files to be written in it, checked as `check_out` does."""
    folder = Path(folder)
    try:
        st = os.stat(folder)  # a link to a folder is a folder: the files go inside it
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise FreqtuiError(f"{folder}: cannot write there ({_why(exc)})") from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise FreqtuiError(f"{folder}: exists and is not a folder; {flag} takes a folder")
    for name in names:
        check_out(folder / name, flag, what)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def newest_on_disk(folder: Path) -> str:
    """Which snapshot of a session survived a failed save, as a sentence."""
    from engine.store.files import read  # late: these import torch
    from engine.store.sessions import LATEST, PREVIOUS, session_info

    for name in (LATEST, PREVIOUS):
        path = Path(folder) / name
        try:
            info = session_info(path, read(path))
        except (FreqtuiError, OSError):
            continue
        return (
            f"the newest snapshot on disk is {path} (epoch {info.epoch}, row {info.row:,}, "
            f"saved at {info.saved_at})"
        )
    return f"no snapshot of this run is on disk in {folder}"
