"""Check before you train: prove a folder can take a file before any row is trained.

`probe(folder)` creates the folder if needed, then creates, writes, fsyncs and removes a
small probe file in it; any failure is a FreqtuiError on one line. `check_out(path)`
does the same for the folder of any file the tool writes and refuses a path that is a
folder, a symbolic link or not a regular file (an atomic write would rename a temporary
file over /dev/null); `check_out_folder` checks an output folder and its files. With
`probe_folder=False` both make only the checks that write nothing (what is at the path),
for a command to refuse before it reads its input and loads torch. `check_session` is
what a run proves before its first row (TrainingRun.claim); `prepare_new` (with
`check_session` itself) and `prepare_resume` make a command's refusals before it builds
a run, which loads torch and numba.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from engine.errors import FreqtuiError
from engine.store import lock, sessions

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


def check_session(folder: Path, out: Path | None = None) -> None:
    """A run's session `folder` (created if missing) and `out`, the file its weights go to
    at the end, proven able to take a file: `out` first, then the folder."""
    if out is not None:
        check_out(out)
    probe(folder)


# ---- before a run is built ---------------------------------------------------------------
# Building a run loads torch and numba (seconds) and makes its data: a command first makes
# the refusals that paths, flags and locks decide, with these (TrainingRun.claim makes
# them again, as the engine's door, for whoever builds a run).
def prepare_new(method: str, root: Path | None = None, out: Path | None = None) -> str:
    """A new run's id under the sessions root (`sessions.new_run_id`: its folder is
    made), once its folder and `out`, the file its weights go to at the end, are proven
    able to take a file (`check_session`, TrainingRun.claim's check). FreqtuiError says
    why not."""
    root = sessions.sessions_dir(root)
    if out is not None:
        check_out(out)  # before the id's folder is made: a refusal leaves no empty session
    run_id = sessions.new_run_id(method, root)
    probe(root / run_id)
    return run_id


def prepare_resume(
    id_or_path: str | Path, root: Path | None = None, out: Path | None = None
) -> Path:
    """The snapshot file `id_or_path` names (`sessions.resolve`), refused without
    writing anything when `out` is no path a file can take (a folder, a link, a device)
    or when another process owns its session (`lock.check_free`). Reading the snapshot
    loads torch: this comes first; TrainingRun.claim checks all again and probes the
    folders (nothing is written before the snapshot is read and checked)."""
    path = sessions.resolve(id_or_path, sessions.sessions_dir(root))
    if out is not None:
        check_out(out, probe_folder=False)
    folder = sessions.session_folder_of(path, None)
    if folder is not None:
        lock.check_free(folder)
    return path


def check_out(
    path: Path, flag: str = "--out", what: str = "weights", *, probe_folder: bool = True
) -> None:
    """A file the tool is about to write (--out, --png, a report's or a sweep's files, the
    CSV files): a regular file or a new one, in a folder that takes a file. A folder, a
    device, a fifo or a socket is refused, and so is a symbolic link: the atomic write
    would replace the link itself, not what it points to. `probe_folder=False`: only
    that, nothing is written (the folder is probed later)."""
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
    if probe_folder:
        probe(path.parent if str(path.parent) else Path("."), what)


def check_out_folder(
    folder: Path, names: list[str], flag: str, what: str, *, probe_folder: bool = True
) -> None:
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
        check_out(folder / name, flag, what, probe_folder=probe_folder)


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
