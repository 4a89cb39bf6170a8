"""Sealed torch files: atomic writes, a checksum over the content, a safe load with one
clear error per failure.

Every file is a `torch.save` of a dict of tensors and plain values, read back with
`torch.load(weights_only=True)`, so loading never runs code from the file. Each file
carries a SHA-256 over its content (torch does not check its archive's CRCs, so a
flipped byte in a tensor would otherwise load silently).

What a file holds, and every check of its fields, is engine/store/snapshot.py's: `read`
returns a Snapshot, `sealed_bytes` turns one into a file's bytes. Session folders and
their snapshots are engine/store/sessions.py's. A file that is not a zip archive or a pickle, or
whose archive breaks a bound (engine/store/safeload.py), is refused before torch is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import re
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.history import History
from engine.store import safeload
from engine.store.snapshot import Snapshot, check_header, note_of

if TYPE_CHECKING:
    from engine.model import FrequencyLSTM

# torch is imported where a tensor is made or read, not here: listing sessions (from their
# sidecars) and refusing a file that is not a torch file answer without loading it


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`:
    a crash at any moment leaves either the old file or the new one, whole. The temporary
    file's name carries the writer's pid (`.latest.pt.<pid>.<random>.tmp`), so a cleaner
    removes it only once its writer is gone (engine/store/lock.py)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        with contextlib.suppress(OSError):  # mkstemp makes 0600; a saved file is an ordinary one
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 where unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def checksum(obj: dict[str, Any]) -> str:
    """SHA-256 over a file's content (every key but "checksum"), tensors by their bytes."""
    import torch

    h = hashlib.sha256()
    _digest({k: v for k, v in obj.items() if k != "checksum"}, h, torch.Tensor)
    return h.hexdigest()


def _digest(obj: Any, h: Any, tensor: type) -> None:
    if isinstance(obj, tensor):
        import torch  # loaded already: `tensor` is its Tensor

        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _digest(k, h, tensor)
            _digest(obj[k], h, tensor)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}".encode())
        for v in obj:
            _digest(v, h, tensor)
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"a freqtui file holds tensors and plain values only, not {type(obj)}")


def sealed(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with its checksum, ready to save."""
    obj = {k: v for k, v in obj.items() if k != "checksum"}
    obj["checksum"] = checksum(obj)
    return obj


def save_weights(path: Path, model: FrequencyLSTM, config: RunConfig, history: History) -> None:
    """The trained weights with the config that made them and the run's history (kind
    "weights")."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    snap = Snapshot("weights", config, weights, history, config.rows_per_set, saved_at=now_iso())
    atomic_write_bytes(Path(path), sealed_bytes(snap))


def sealed_bytes(snap: Snapshot) -> bytes:
    """A Snapshot as the bytes of a sealed file; weights holding NaN or an infinity are
    refused (`Snapshot.refuse_nonfinite`)."""
    import torch

    snap.refuse_nonfinite()
    buf = io.BytesIO()
    torch.save(sealed(snap.to_dict()), buf)
    return buf.getvalue()


def read(path: Path) -> Snapshot:
    """Load and check a freqtui file (a snapshot or a weights file) as a Snapshot;
    FreqtuiError names the file and the reason."""
    path = Path(path)
    return Snapshot.from_dict(_load(path), path)


def read_file(path: Path) -> dict[str, Any]:
    """A checked file's content as stored, its config as a RunConfig: for a reader that
    wants the file itself (tests, bench/); the code reads `read`'s Snapshot."""
    path = Path(path)
    raw = _load(path)
    return {**raw, "config": Snapshot.from_dict(raw, path).config}


def _load(path: Path) -> dict[str, Any]:
    """The file's dict, after the bounds (engine/store/safeload.py), its header and checksum."""
    if not path.exists():
        raise FreqtuiError(f"{path}: no such file")
    if path.is_dir():
        raise FreqtuiError(f"{path}: is a folder, not a freqtui file")
    safeload.check_regular(path)  # /dev/null is not an empty freqtui file
    if path.stat().st_size == 0:
        raise FreqtuiError(f"{path}: empty file (truncated)")
    try:
        safeload.check_archive(path)  # sizes before anything is unpacked
        _check_magic(path)  # neither a zip nor a pickle: refused before torch loads
        safeload.precheck(path)  # a hostile structure, schema or config: the same
        import torch

        with warnings.catch_warnings():  # torch warns on stderr about foreign pickles
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except FreqtuiError:
        raise
    except PermissionError as exc:
        raise FreqtuiError(f"{path}: cannot read it ({exc.strerror})") from None
    except Exception as exc:  # any unpickling failure: truncated, corrupt, foreign, unsafe
        raise FreqtuiError(f"{path}: not a readable freqtui file ({_why(exc, path)})") from None
    check_header(obj, path)
    safeload.check_payload(path, obj)  # bounded structure, schema, config: before any walk
    if "checksum" in obj or obj["kind"] == "snapshot":
        try:
            ok = obj.get("checksum") == checksum(obj)
        except TypeError:
            ok = False
        if not ok:
            raise FreqtuiError(
                f"{path}: corrupted (checksum mismatch: the content changed after it was saved)"
            )
    return obj


def _check_magic(path: Path) -> None:
    """A torch file is a zip archive (or, from old torch, a pickle): anything else is
    refused here, as torch.load would refuse it, without loading torch."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith((b"PK", b"\x80")):
        raise FreqtuiError(f"{path}: not a readable freqtui file (not a torch file)")


def _why(exc: Exception, path: Path) -> str:
    text = str(exc)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        head = b""
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        found = re.search(r"unsupported GLOBAL (\S+)", text, re.IGNORECASE)
        if found:
            return (
                f"it asks to load {found.group(1)}, which is code, not data; "
                "refused, nothing was run"
            )
        return "corrupt or foreign content the safe loader refuses; nothing was run"
    if head.startswith(b"PK"):  # a torch file is a zip archive
        if "central directory" in text:
            return "truncated: the archive's end is missing"
        return "truncated or corrupted archive"
    if not head.startswith(b"\x80"):  # not even a pickle
        return "not a torch file"
    if isinstance(exc, (pickle.UnpicklingError, EOFError, UnicodeDecodeError, KeyError)):
        return "not a torch file, or truncated"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"not a torch file, or damaged: {first[:100]}"


def weights_note(obj: dict[str, Any]) -> str:
    """Which weights the file `read_file` returned holds (Snapshot.weights_note)."""
    return note_of(obj.get("kind", ""), obj.get("weights"))


def load_model(path: Path) -> tuple[RunConfig, FrequencyLSTM]:
    snap = read(path)
    return snap.config, snap.build_model()
