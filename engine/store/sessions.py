"""Session folders: where they live, their ids, writing a snapshot into one, listing and
finding them. What a snapshot holds is engine/store/snapshot.py's, its bytes engine/store/files.py's;
continuing a run from a snapshot is `TrainingRun.resume` (engine/run.py).

Sessions live in `sessions/<run-id>/` (see `sessions_dir`); each folder holds
`latest.pt` and, from the second save on, `previous.pt` (the save before it), and
`latest.json`, a small sidecar with what `freqtui sessions` shows of `latest.pt` (written
after it at every save). The sidecar is a cache for listing only, read without torch:
one that is missing, stale (it names another size or time of `latest.pt`), malformed or
hostile is ignored and the snapshot itself is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import stat
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import FreqtuiError
from engine.store import lock, safeload
from engine.store.files import atomic_write_bytes, now_iso, read, sealed_bytes
from engine.store.snapshot import Snapshot

SESSIONS_ENV = "FREQTUI_SESSIONS"
LATEST = "latest.pt"
PREVIOUS = "previous.pt"
SIDECAR = "latest.json"  # what `freqtui sessions` shows of latest.pt, readable without torch
SIDECAR_FORMAT = "freqtui-session"
SIDECAR_VERSION = 2  # 2: a run's length is the one its trainer planned (1 listed --epochs)
SIDECAR_MAX_BYTES = 16_384  # a real sidecar is ~400 bytes
AUTOSAVE_MIN_ROWS = 20_000  # the least default autosave interval, in rows


def sessions_dir(explicit: Path | None = None) -> Path:
    """The sessions folder: `explicit` (the --sessions flag), else $FREQTUI_SESSIONS,
    else `sessions/` under the current directory. Not created here: the first save does."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(SESSIONS_ENV)
    if env:
        return Path(env)
    return Path.cwd() / "sessions"


_issued: set[Path] = set()  # ids handed out by this process but maybe not saved yet
_issued_lock = threading.Lock()


def session_folder_of(path: Path, run_id: str | None) -> Path | None:
    """The session folder a snapshot file belongs to: the folder of a session's
    `latest.pt` or `previous.pt`, or a folder named by the file's run id; None for a file
    that stands alone (a committed `models/*.pt`, a copy elsewhere), which a resume never
    writes beside. `run_id` None (the file not read yet): only the first rule."""
    path = Path(path)
    folder = path.parent if path.parent.name else path.absolute().parent
    if path.name in (LATEST, PREVIOUS) or (run_id is not None and folder.name == run_id):
        return folder
    return None


def new_run_id(method: str, root: Path, now: datetime | None = None) -> str:
    """A readable, unused run id: `YYYYmmdd-HHMMSS-<method>`, with `-2`, `-3` … if taken.
    Its folder is created here, so that runs started together never share one."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{re.sub(r'[^A-Za-z0-9_.]+', '_', method) or 'run'}"
    root = Path(root)
    with _issued_lock:
        for n in range(1, 10_000):
            run_id = base if n == 1 else f"{base}-{n}"
            folder = (root / run_id).absolute()
            if folder in _issued:
                continue
            try:  # claim the folder: two processes started in the same second differ
                folder.mkdir(parents=True)
            except FileExistsError:
                continue
            except OSError:  # cannot create it now; the first save says why
                if kind_of(folder) is not None:  # a name too long: one line, here
                    continue
            _issued.add(folder)
            return run_id
    raise FreqtuiError(f"{root}: no free run id for {base}")


def snapshot_payload(capture: dict[str, Any], run_id: str) -> Snapshot:
    """A capture (`TrainingRun.capture()`, a file's content) as the snapshot of session
    `run_id`, saved now."""
    return Snapshot.from_dict({**capture, "run_id": run_id, "saved_at": now_iso()}, run_id)


def write_snapshot(folder: Path, snap: Snapshot) -> Path:
    """Write `snap` as `folder/latest.pt` (see `store`), then its sidecar. Weights holding
    NaN or an infinity are refused before anything is written."""
    latest = store(folder, sealed_bytes(snap))
    write_sidecar(latest, snap)
    return latest


def store(folder: Path, data: bytes) -> Path:
    """Write a snapshot's bytes as `folder/latest.pt`, first keeping the old one as
    `previous.pt`: the one home of that rotation.

    Both steps are atomic writes, so after a crash at any moment `latest.pt` is a whole
    snapshot (the new one or the old one) and `previous.pt` a whole older one.
    """
    folder = Path(folder)
    latest = folder / LATEST
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.clean_temps(folder)  # leftovers of a write that a kill interrupted
        if latest.exists():
            atomic_write_bytes(folder / PREVIOUS, latest.read_bytes())
        atomic_write_bytes(latest, data)
    except OSError as exc:
        raise FreqtuiError(f"{latest}: cannot write the snapshot ({exc.strerror or exc})") from None
    return latest


def write_sidecar(snapshot: Path, snap: Snapshot) -> None:
    """`latest.json` beside a snapshot just written: its SessionInfo and the snapshot's
    size and time, atomically. Best effort: a sidecar that cannot be written is removed
    (the listing then reads the snapshot), never an error of the save."""
    snapshot = Path(snapshot)
    side = snapshot.parent / SIDECAR
    try:
        info = session_info(snapshot, snap)
        st = os.stat(snapshot)
        fields = {k: v for k, v in dataclasses.asdict(info).items() if k not in ("path", "error")}
        data = {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "snapshot": {"name": snapshot.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns},
            "session": fields,
        }
        atomic_write_bytes(side, json.dumps(data, indent=1).encode())
    except Exception:  # a cache: whatever went wrong, the snapshot is saved and listable
        with contextlib.suppress(OSError):
            side.unlink()


def read_sidecar(folder: Path) -> SessionInfo | None:
    """The SessionInfo the sidecar in `folder` holds for its `latest.pt`, or None when
    there is none or it cannot be trusted for listing (stale, malformed, hostile)."""
    folder = Path(folder)
    snapshot = folder / LATEST
    try:
        fd = os.open(folder / SIDECAR, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # a fifo, a device
                return None
            raw = f.read(SIDECAR_MAX_BYTES + 1)
        if len(raw) > SIDECAR_MAX_BYTES:
            return None
        data = json.loads(raw.decode("utf-8"))
        snap = data["snapshot"]
        st = os.stat(snapshot)
        if (
            data["format"] != SIDECAR_FORMAT
            or data["version"] != SIDECAR_VERSION
            or snap["name"] != LATEST
            or snap["size"] != st.st_size
            or snap["mtime_ns"] != st.st_mtime_ns
            or not stat.S_ISREG(st.st_mode)
        ):
            return None
        fields = data["session"]
        names = {f.name for f in dataclasses.fields(SessionInfo)} - {"path", "error"}
        if not isinstance(fields, dict) or set(fields) != names:
            return None  # written by another freqtui: the snapshot says what this one shows
        kinds = {f.name: str(f.type) for f in dataclasses.fields(SessionInfo)}
        values = {k: _sidecar_value(v, kinds[k]) for k, v in fields.items()}
        if not isinstance(values["id"], str) or not values["id"] or "/" in values["id"]:
            return None
        return SessionInfo(**values, path=snapshot)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def _sidecar_value(v: Any, kind: str) -> Any:
    """A sidecar field as listing shows it, of the type SessionInfo declares for it
    (`kind`, e.g. "float | None"): short printable strings, finite counts and numbers."""
    allowed = {k.strip() for k in kind.split("|")}
    if v is None:
        ok = "None" in allowed
    elif isinstance(v, bool):
        ok = "bool" in allowed
    elif isinstance(v, int):
        ok = 0 <= v < 2**62 and bool(allowed & {"int", "float"})
    elif isinstance(v, float):
        ok = math.isfinite(v) and "float" in allowed
    else:
        ok = isinstance(v, str) and "str" in allowed and len(v) <= 300 and v.isprintable()
    if ok:
        return v
    raise ValueError(f"not a sidecar value for {kind}: {type(v).__name__}")


# ---- listing and finding sessions -----------------------------------------------------
@dataclass(frozen=True)
class SessionInfo:
    """One session folder as `freqtui sessions` and the console's browser show it."""

    id: str
    method: str
    epoch: int  # 1-based epoch being trained (the last one once finished)
    epochs: int
    row: int  # rows done in that epoch
    rows_per_epoch: int
    frozen_mse_train: float | None  # the last frozen evaluation, None if none yet
    frozen_mse_test: float | None
    saved_at: str
    path: Path
    finished: bool = False
    error: str | None = None  # set when the snapshot cannot be read; the rest is empty


def session_info(path: Path, snap: Snapshot) -> SessionInfo:
    """Summarise a snapshot. Its length is the one its trainer planned (a clock's
    curriculum plus its polish, at most --epochs), as the console and `eval` show it: a
    finished clock lists as `35/35`, not `35/60 r0`."""
    epochs = snap.planned_epochs
    finished = snap.finished
    return SessionInfo(
        id=snap.run_id,
        method=snap.method,
        epoch=epochs if finished else snap.epochs_done + 1,
        epochs=epochs,
        row=snap.rows_per_epoch if finished else snap.row,
        rows_per_epoch=snap.rows_per_epoch,
        frozen_mse_train=snap.last_eval.train.overall if snap.last_eval else None,
        frozen_mse_test=snap.last_eval.test.overall if snap.last_eval else None,
        saved_at=snap.saved_at,
        path=Path(path),
        finished=finished,
    )


def list_sessions(root: Path) -> list[SessionInfo]:
    """Every session folder under `root`, newest save first; unreadable ones say why."""
    root = Path(root)
    try:
        if not root.is_dir():
            return []
        folders = [f for f in root.iterdir() if f.is_dir() and not f.name.startswith(".")]
    except OSError as exc:
        raise FreqtuiError(f"{root}: cannot list the sessions ({_why(exc)})") from None
    out: list[SessionInfo] = []
    for folder in folders:
        lock.clean_temps(folder)
        try:
            path = _snapshot_in(folder)
        except FreqtuiError as exc:  # a folder this user cannot read: listed as such
            out.append(
                SessionInfo(folder.name, "", 0, 0, 0, 0, None, None, "", folder, error=str(exc))
            )
            continue
        if path is None:
            continue
        cached = read_sidecar(folder) if path.name == LATEST else None
        if cached is not None:
            out.append(cached)
            continue
        try:
            snap = read(path)  # no sidecar (an older save) or one not to be trusted
            if not snap.resumable:
                raise FreqtuiError(f"{path}: a weights file, not a snapshot")
            out.append(session_info(path, snap))
        except FreqtuiError as exc:
            out.append(
                SessionInfo(folder.name, "", 0, 0, 0, 0, None, None, "", path, error=str(exc))
            )
    return sorted(out, key=lambda s: (s.saved_at, s.id), reverse=True)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def kind_of(path: Path) -> str | None:
    """What is at `path`: "file", "dir", "other", or None for nothing. A path that cannot
    be looked at (a name too long, a folder this user may not read) is a FreqtuiError on
    one line, where pathlib's is_file() would raise."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        what = "unreadable" if isinstance(exc, PermissionError) else "cannot look at it"
        raise FreqtuiError(f"{str(path)[:300]}: {what} ({_why(exc)})") from None
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


def _snapshot_in(folder: Path) -> Path | None:
    for name in (LATEST, PREVIOUS):
        if kind_of(folder / name) == "file":
            return folder / name
    return None


def resolve(id_or_path: str | Path, root: Path) -> Path:
    """The snapshot file meant by a path (file or session folder), a run id, or a unique
    prefix of one, looked up under `root`."""
    text = str(id_or_path)
    candidates = [Path(text)]
    if text and "/" not in text and text not in (".", ".."):
        candidates.append(Path(root) / text)
    for cand in candidates:
        safeload.check_regular(cand)
        kind = kind_of(cand)
        if kind == "file":
            return cand
        if kind == "dir":
            found = _snapshot_in(cand)
            if found is None:
                raise FreqtuiError(f"{cand}: a folder with no {LATEST} in it")
            return found
    if text and "/" not in text and kind_of(Path(root)) == "dir":
        try:
            matches = sorted(
                d for d in Path(root).iterdir() if d.is_dir() and d.name.startswith(text)
            )
        except OSError as exc:
            raise FreqtuiError(f"{root}: cannot list the sessions ({_why(exc)})") from None
        if len(matches) == 1:
            return resolve(matches[0], root)
        if len(matches) > 1:
            names = ", ".join(d.name for d in matches[:4])
            raise FreqtuiError(f"{text!r} matches several sessions ({names}); give more of the id")
    raise FreqtuiError(
        f"{text[:300]}: no such file or session in {root} (`freqtui sessions` lists them)"
    )


# ---- deleting sessions -----------------------------------------------------------------
def session_folder(run_id: str, root: Path) -> Path:
    """The folder of the session `run_id` (its exact name, no prefix: a deletion names what it
    deletes), checked to be a session folder directly inside `root`: a plain name, a real
    folder (not a link), under the real `root`, holding a snapshot and no sub-folder."""
    name = str(run_id)
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\0" in name:
        raise FreqtuiError(f"{name[:300]!r}: not a session id (`freqtui sessions` lists them)")
    root = Path(root)
    if kind_of(root) != "dir":
        raise FreqtuiError(f"{root}: no sessions folder there")
    folder = root / name
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        raise FreqtuiError(
            f"{name[:300]}: no such session in {root} (`freqtui sessions` lists them)"
        ) from None
    except OSError as exc:
        raise FreqtuiError(f"{folder}: cannot look at it ({_why(exc)})") from None
    if stat.S_ISLNK(st.st_mode):
        raise FreqtuiError(f"{folder}: a symbolic link, not a session folder; not deleted")
    if not stat.S_ISDIR(st.st_mode):
        raise FreqtuiError(f"{folder}: not a folder, so not a session; not deleted")
    if os.path.realpath(folder.parent) != os.path.realpath(root):
        raise FreqtuiError(f"{folder}: not inside the sessions folder {root}; not deleted")
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise FreqtuiError(f"{folder}: cannot list it ({_why(exc)}); not deleted") from None
    inner = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    if inner:  # a session folder holds files only: this is something else
        raise FreqtuiError(
            f"{folder}: holds a folder ({inner[0]}), so it is not a session folder; not deleted"
        )
    if not any(e.name in (LATEST, PREVIOUS) for e in entries):
        raise FreqtuiError(f"{folder}: holds no {LATEST} or {PREVIOUS}: not a session; not deleted")
    return folder


def check_deletable(run_id: str, root: Path) -> Path:
    """The session folder `delete_session` would remove, or a FreqtuiError saying why not:
    a folder that is not a session's (see `session_folder`) or a live session, one a
    process (this one or another) holds the lock of."""
    folder = session_folder(run_id, root)
    if lock.held_here(folder):
        raise FreqtuiError(
            f"session {folder.name} is the live one (this console runs it); not deleted"
        )
    if lock.owned_elsewhere(folder):
        raise FreqtuiError(
            f"session {folder.name} is in use by another process (lock {folder / lock.LOCK_NAME}); "
            "stop it first; not deleted"
        )
    return folder


def delete_session(run_id: str, root: Path) -> Path:
    """Remove the session folder `root/run_id` and everything in it, after the checks of
    `check_deletable`. Its lock is held during the removal, so no process can resume it
    meanwhile. Returns the removed folder."""
    folder = check_deletable(run_id, root)
    held = lock.acquire(folder)  # refuses if a process took it since the check
    try:
        shutil.rmtree(folder)  # never follows a link inside it (rmtree.avoids_symlink_attacks)
    except OSError as exc:
        raise FreqtuiError(f"{folder}: not (wholly) deleted ({_why(exc)})") from None
    finally:
        held.release()
    return folder


def read_snapshot(path: Path) -> Snapshot:
    """A checked snapshot file (not a weights file: that has nothing to resume from)."""
    snap = read(path)
    if not snap.resumable:
        raise FreqtuiError(
            f"{path}: a weights file, not a snapshot: it has no trainer state to resume from "
            "(`freqtui eval` reads it)"
        )
    return snap
