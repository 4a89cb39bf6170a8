"""Sealed torch files: atomic writes, a checksum over the content, a safe load with one
clear error per failure.

Every file is a `torch.save` of a dict of tensors and plain values, read back with
`torch.load(weights_only=True)`, so loading never runs code from the file. Each file
carries a SHA-256 over its content (torch does not check its archive's CRCs, so a
flipped byte in a tensor would otherwise load silently).

Two kinds share the format: "weights" (config + `lstm.*`/`fc.*`) and "snapshot"
(everything a run needs to continue exactly: weights, trainer state with optimizer,
carried (h, c), position and RNG states, the torch RNG state and the metric history).
Session folders and their snapshots are engine/sessions.py's. A file that is not a zip
archive or a pickle, or whose archive breaks a bound (engine/safeload.py), is refused
before torch is loaded.
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

from engine import safeload
from engine.config import RunConfig
from engine.errors import FreqtuiError

if TYPE_CHECKING:
    from engine.model import FrequencyLSTM

# torch is imported where a tensor is made or read, not here: listing sessions (from their
# sidecars) and refusing a file that is not a torch file answer without loading it

FORMAT = "freqtui"
FORMAT_VERSION = 1
KINDS = ("weights", "snapshot")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`:
    a crash at any moment leaves either the old file or the new one, whole. The temporary
    file's name carries the writer's pid (`.latest.pt.<pid>.<random>.tmp`), so a cleaner
    removes it only once its writer is gone (engine/lock.py)."""
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


def save_weights(path: Path, model: FrequencyLSTM, config: RunConfig, **extra: Any) -> None:
    """The trained weights with the config that made them (kind "weights")."""
    atomic_torch_save(
        sealed(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "kind": "weights",
                "saved_at": now_iso(),
                "config": config.to_dict(),
                "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                **extra,
            }
        ),
        Path(path),
    )


def read_file(path: Path) -> dict[str, Any]:
    """Load and check a freqtui file; FreqtuiError names the file and the reason."""
    path = Path(path)
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
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise FreqtuiError(f"{path}: not a freqtui file (no freqtui format marker)")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FreqtuiError(f"{path}: corrupted (format version {version!r} is not valid)")
    if version > FORMAT_VERSION:
        raise FreqtuiError(
            f"{path}: format version {version} is newer than this freqtui reads "
            f"({FORMAT_VERSION}); upgrade freqtui"
        )
    kind = obj.get("kind")
    if kind not in KINDS:
        raise FreqtuiError(f"{path}: unknown kind {kind!r} (this freqtui reads {', '.join(KINDS)})")
    safeload.check_payload(path, obj)  # bounded structure, schema, config: before any walk
    if "checksum" in obj or kind == "snapshot":
        try:
            ok = obj.get("checksum") == checksum(obj)
        except TypeError:
            ok = False
        if not ok:
            raise FreqtuiError(
                f"{path}: corrupted (checksum mismatch: the content changed after it was saved)"
            )
    try:
        obj["config"] = RunConfig.from_dict(obj["config"])
    except KeyError:
        raise FreqtuiError(f"{path}: incomplete file (no config)") from None
    except (FreqtuiError, TypeError, ValueError) as exc:
        raise FreqtuiError(f"{path}: its config is invalid ({exc})") from None
    if kind == "snapshot":
        _check_snapshot(path, obj)
    _check_weights(path, obj)
    return obj


def _check_magic(path: Path) -> None:
    """A torch file is a zip archive (or, from old torch, a pickle): anything else is
    refused here, as torch.load would refuse it, without loading torch."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith((b"PK", b"\x80")):
        raise FreqtuiError(f"{path}: not a readable freqtui file (not a torch file)")


def _check_snapshot(path: Path, obj: dict[str, Any]) -> None:
    import torch

    required = {
        "run_id": str,
        "saved_at": str,
        "trainer": dict,
        "history": dict,
        "torch_rng": torch.Tensor,
    }
    for key, kind in required.items():
        if not isinstance(obj.get(key), kind):
            raise FreqtuiError(f"{path}: incomplete snapshot (no valid {key})")
    trainer = obj["trainer"]
    if trainer.get("method") != obj["config"].method:
        raise FreqtuiError(
            f"{path}: inconsistent snapshot (trainer state is for {trainer.get('method')!r}, "
            f"config says {obj['config'].method!r})"
        )
    for key in ("epoch", "row"):
        if not isinstance(trainer.get(key), int) or trainer[key] < 0:
            raise FreqtuiError(f"{path}: incomplete snapshot (trainer has no valid {key})")
    if obj["torch_rng"].dtype != torch.uint8:
        raise FreqtuiError(f"{path}: incomplete snapshot (torch_rng is not a byte tensor)")


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


def model_from(path: Path, obj: dict[str, Any]) -> FrequencyLSTM:
    """Build the model a file's config describes and load its weights, checking shapes."""
    model = _check_weights(path, obj)
    model.load_state_dict(obj["model"])
    return model


def _check_weights(path: Path, obj: dict[str, Any]) -> FrequencyLSTM:
    """A fresh model for the file's config, after checking the weights fit it."""
    import torch

    from engine.model import build_model

    config: RunConfig = obj["config"]
    model = build_model(config)
    weights = obj.get("model")
    if not isinstance(weights, dict):
        raise FreqtuiError(f"{path}: incomplete file (no model weights)")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise FreqtuiError(
            f"{path}: weights do not fit FrequencyLSTM (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for k, v in expected.items():
        w = weights[k]
        if not isinstance(w, torch.Tensor) or w.shape != v.shape:
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise FreqtuiError(
                f"{path}: incompatible weights: {k} has shape {got}, a model with hidden size "
                f"{config.hidden_size} needs {tuple(v.shape)}"
            )
        if w.dtype != v.dtype:
            raise FreqtuiError(f"{path}: incompatible weights: {k} is {w.dtype}, not {v.dtype}")
        if not torch.isfinite(w).all():
            raise FreqtuiError(f"{path}: weights hold NaN or infinite values ({k})")
    return model


def weights_note(obj: dict[str, Any]) -> str:
    """Which weights a file holds: a snapshot says (final, best on validation at row R,
    or current while training); a weights file holds a run's final weights."""
    note = obj.get("weights")
    if isinstance(note, str) and note:
        return note[:200]
    return "final" if obj.get("kind") == "weights" else "not recorded (an older snapshot)"


def load_model(path: Path) -> tuple[RunConfig, FrequencyLSTM]:
    obj = read_file(path)
    return obj["config"], model_from(path, obj)
