"""One process per session: an advisory lock file in the session folder.

`acquire(folder)` takes `fcntl.flock(LOCK_EX | LOCK_NB)` on `folder/.lock` and writes the
holder's pid into it; the kernel drops the lock when the process ends, however it ends,
so a lock left by a killed process never blocks (the file stays, the lock does not).
A second process gets a FreqtuiError naming the holder's pid; `check_free(folder)` makes
the same refusal without taking the lock or creating anything (a command's check before
it builds a run).

`clean_temps(folder)` removes the temporary files of an interrupted atomic write
(`.latest.pt.<pid>.*.tmp`, `.previous.pt.<pid>.*.tmp`) only when their writer is gone:
the pid in the name is no running process. A save in progress elsewhere (a sweep's
driver writing a cell, a run in another process) is never pulled from under its writer.
A temp of an older freqtui (no pid in its name) goes only when no process owns the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from engine.errors import FreqtuiError

LOCK_NAME = ".lock"
# snapshots, the listing sidecar (engine/store/sessions.py) and writable.probe's
TEMP_PATTERNS = (".latest.pt.*.tmp", ".previous.pt.*.tmp", ".latest.json.*.tmp", ".probe.*.tmp")

_held: dict[Path, SessionLock] = {}  # folders this process owns
_held_lock = threading.Lock()


class SessionLock:
    """The lock on one session folder, held by this process until `release`."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    def release(self) -> None:
        with _held_lock:
            if self._fd is None:
                return
            _held.pop(self.folder, None)
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def folder_key(folder: Path) -> Path:
    """The absolute path a lock is kept under."""
    return Path(os.path.abspath(folder))


def acquire(folder: Path) -> SessionLock:
    """Own the session in `folder` (created if missing); FreqtuiError if another process
    owns it. Taking a lock this process holds already returns that lock."""
    key = folder_key(folder)
    with _held_lock:
        if key in _held:
            return _held[key]
        try:
            key.mkdir(parents=True, exist_ok=True)
            fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise FreqtuiError(f"{key}: cannot lock the session ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise _in_use(key, holder) from None
        except OSError as exc:  # a filesystem without flock
            os.close(fd)
            raise FreqtuiError(f"{key}: cannot lock the session ({exc.strerror or exc})") from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        lock = SessionLock(key, fd)
        _held[key] = lock
        return lock


def _in_use(key: Path, holder: str) -> FreqtuiError:
    return FreqtuiError(
        f"session {key.name} is in use by process {holder} (lock {key / LOCK_NAME}); "
        "stop that process or wait for it to end"
    )


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text.isdigit():
            return text
    return "(pid unknown)"


def held_here(folder: Path) -> bool:
    """True when this process owns the session in `folder` (a run it trains or saved)."""
    with _held_lock:
        return folder_key(folder) in _held


def holder_elsewhere(folder: Path) -> str | None:
    """The pid (as `acquire` names it) of another process that holds the session's lock
    right now; None when no other process does. Creates nothing."""
    key = folder_key(folder)
    with _held_lock:
        if key in _held:
            return None
    try:
        fd = os.open(key / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)  # never creates the file
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return None


def owned_elsewhere(folder: Path) -> bool:
    """True when another process holds the session's lock right now."""
    return holder_elsewhere(folder) is not None


def check_free(folder: Path) -> None:
    """The refusal `acquire` would make, without taking the lock or creating anything: a
    FreqtuiError naming the process that owns the session in `folder` right now."""
    holder = holder_elsewhere(folder)
    if holder is not None:
        raise _in_use(folder_key(folder), holder)


def writer_pid(temp: Path, pattern: str) -> int | None:
    """The pid in a temp file's name (`.latest.pt.<pid>.<random>.tmp`), None if none."""
    middle = temp.name[len(pattern.split("*")[0]) : -len(".tmp")]
    pid, dot, _ = middle.partition(".")
    return int(pid) if dot and pid.isdigit() else None


def running(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's process, or an odd pid: leave its file alone
    return True


def clean_temps(folder: Path) -> list[Path]:
    """Remove leftovers of interrupted writes whose writer is gone."""
    folder = Path(folder)
    try:
        temps = [(p, pattern) for pattern in TEMP_PATTERNS for p in folder.glob(pattern)]
    except OSError:
        return []
    removed = []
    owned: bool | None = None
    for p, pattern in temps:
        pid = writer_pid(p, pattern)
        if pid is not None:
            if running(pid):
                continue
        else:  # no pid in the name (an older freqtui): only in a folder nobody owns
            if owned is None:
                owned = owned_elsewhere(folder)
            if owned:
                continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def release(folder: Path) -> None:
    """Give up this process's lock on `folder`, if it holds one."""
    with _held_lock:
        held = _held.get(folder_key(folder))
    if held is not None:
        held.release()
