"""Files: atomic writes, and the weights file that `train --out` writes and `eval` reads.

Every file is a `torch.save` of a dict of tensors and plain values, read back with
`torch.load(weights_only=True)`, so loading never runs code from the file.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.model import FrequencyLSTM, build_model

FORMAT = "freqtui"
FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`:
    a crash at any moment leaves either the old file or the new one, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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


def atomic_torch_save(obj: Any, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def save_weights(path: Path, model: FrequencyLSTM, config: RunConfig, **extra: Any) -> None:
    """The trained weights with the config that made them (kind "weights")."""
    atomic_torch_save(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "kind": "weights",
            "saved_at": now_iso(),
            "config": config.to_dict(),
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            **extra,
        },
        Path(path),
    )


def read_file(path: Path) -> dict[str, Any]:
    """Load and check a freqtui file; FreqtuiError names the file and the reason."""
    path = Path(path)
    if not path.exists():
        raise FreqtuiError(f"{path}: no such file")
    if path.is_dir():
        raise FreqtuiError(f"{path}: is a folder, not a freqtui file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as exc:
        raise FreqtuiError(f"{path}: cannot read it ({exc.strerror})") from None
    except Exception as exc:  # any unpickling failure: truncated, corrupt, foreign, unsafe
        raise FreqtuiError(f"{path}: not a readable freqtui file ({_why(exc)})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise FreqtuiError(f"{path}: not a freqtui file (no freqtui format marker)")
    version = obj.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FreqtuiError(
            f"{path}: format version {version!r} is newer than this freqtui reads "
            f"({FORMAT_VERSION}); upgrade freqtui"
        )
    try:
        obj["config"] = RunConfig.from_dict(obj["config"])
    except KeyError:
        raise FreqtuiError(f"{path}: incomplete file (no config)") from None
    except (FreqtuiError, TypeError, ValueError) as exc:
        raise FreqtuiError(f"{path}: its config is invalid ({exc})") from None
    return obj


def _why(exc: Exception) -> str:
    text = str(exc)
    if "Weights only load failed" in text:
        return "it holds objects other than tensors and plain values; refused, nothing was run"
    if "PytorchStreamReader" in text or "zip" in text.lower():
        return "truncated or corrupt archive"
    if isinstance(exc, (pickle.UnpicklingError, EOFError, UnicodeDecodeError, KeyError)):
        return "not a torch file"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:120]


def model_from(path: Path, obj: dict[str, Any]) -> FrequencyLSTM:
    """Build the model a file's config describes and load its weights, checking shapes."""
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
        if not torch.isfinite(w).all():
            raise FreqtuiError(f"{path}: weights hold NaN or infinite values ({k})")
    model.load_state_dict(weights)
    return model


def load_model(path: Path) -> tuple[RunConfig, FrequencyLSTM]:
    obj = read_file(path)
    return obj["config"], model_from(path, obj)
