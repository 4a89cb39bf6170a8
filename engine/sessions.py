"""Files: atomic writes, weights files, and session snapshots (save, list, resolve, resume).

Every file is a `torch.save` of a dict of tensors and plain values, read back with
`torch.load(weights_only=True)`, so loading never runs code from the file. Each file
carries a SHA-256 over its content (torch does not check its archive's CRCs, so a
flipped byte in a tensor would otherwise load silently).

Two kinds share the format: "weights" (config + `lstm.*`/`fc.*`) and "snapshot"
(everything a run needs to continue exactly: weights, trainer state with optimizer,
carried (h, c), position and RNG states, the torch RNG state and the metric history).
Sessions live in `sessions/<run-id>/` (see `sessions_dir`); each folder holds
`latest.pt` and, from the second save on, `previous.pt` (the save before it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import os
import pickle
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.model import FrequencyLSTM, build_model

if TYPE_CHECKING:
    from engine.run import TrainingRun

FORMAT = "freqtui"
FORMAT_VERSION = 1
KINDS = ("weights", "snapshot")
SESSIONS_ENV = "FREQTUI_SESSIONS"
LATEST = "latest.pt"
PREVIOUS = "previous.pt"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`:
    a crash at any moment leaves either the old file or the new one, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def checksum(obj: dict[str, Any]) -> str:
    """SHA-256 over a file's content (every key but "checksum"), tensors by their bytes."""
    h = hashlib.sha256()
    _digest({k: v for k, v in obj.items() if k != "checksum"}, h)
    return h.hexdigest()


def _digest(obj: Any, h: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _digest(k, h)
            _digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}".encode())
        for v in obj:
            _digest(v, h)
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"a freqtui file holds tensors and plain values only, not {type(obj)}")


def _sealed(obj: dict[str, Any]) -> dict[str, Any]:
    obj = {k: v for k, v in obj.items() if k != "checksum"}
    obj["checksum"] = checksum(obj)
    return obj


def save_weights(path: Path, model: FrequencyLSTM, config: RunConfig, **extra: Any) -> None:
    """The trained weights with the config that made them (kind "weights")."""
    atomic_torch_save(
        _sealed(
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
    if path.stat().st_size == 0:
        raise FreqtuiError(f"{path}: empty file (truncated)")
    try:
        with warnings.catch_warnings():  # torch warns on stderr about foreign pickles
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
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


def _check_snapshot(path: Path, obj: dict[str, Any]) -> None:
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


def load_model(path: Path) -> tuple[RunConfig, FrequencyLSTM]:
    obj = read_file(path)
    return obj["config"], model_from(path, obj)


# ---- sessions: where they live, their ids, saving ------------------------------------
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
                if folder.exists():
                    continue
            _issued.add(folder)
            return run_id
    raise FreqtuiError(f"{root}: no free run id for {base}")


def snapshot_payload(capture: dict[str, Any], run_id: str) -> dict[str, Any]:
    """A capture from `TrainingRun.capture()` as a sealed snapshot file's content."""
    return _sealed(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "kind": "snapshot",
            "saved_at": now_iso(),
            "run_id": run_id,
            **capture,
        }
    )


def write_snapshot(folder: Path, payload: dict[str, Any]) -> Path:
    """Write `folder/latest.pt`, first keeping the old one as `previous.pt`.

    Both steps are atomic writes, so after a crash at any moment `latest.pt` is a whole
    snapshot (the new one or the old one) and `previous.pt` a whole older one.
    """
    folder = Path(folder)
    latest = folder / LATEST
    buf = io.BytesIO()
    torch.save(payload, buf)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if latest.exists():
            atomic_write_bytes(folder / PREVIOUS, latest.read_bytes())
        atomic_write_bytes(latest, buf.getvalue())
    except OSError as exc:
        raise FreqtuiError(f"{latest}: cannot write the snapshot ({exc.strerror or exc})") from None
    return latest


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


def session_info(path: Path, obj: dict[str, Any]) -> SessionInfo:
    """Summarise a snapshot that `read_file` returned."""
    config: RunConfig = obj["config"]
    trainer = obj["trainer"]
    rows_per_epoch = int(obj.get("rows_per_epoch") or config.rows_per_set)
    done, row = int(trainer["epoch"]), int(trainer["row"])
    finished = done >= config.epochs
    if finished:
        epoch, row = config.epochs, rows_per_epoch
    else:
        epoch = done + 1
    evals = obj["history"].get("evals") or []
    last = evals[-1] if evals else None
    return SessionInfo(
        id=str(obj["run_id"]),
        method=config.method,
        epoch=epoch,
        epochs=config.epochs,
        row=row,
        rows_per_epoch=rows_per_epoch,
        frozen_mse_train=float(last["train"]["overall"]) if last else None,
        frozen_mse_test=float(last["test"]["overall"]) if last else None,
        saved_at=str(obj["saved_at"]),
        path=Path(path),
        finished=finished,
    )


def list_sessions(root: Path) -> list[SessionInfo]:
    """Every session folder under `root`, newest save first; unreadable ones say why."""
    root = Path(root)
    if not root.is_dir():
        return []
    out: list[SessionInfo] = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        path = _snapshot_in(folder)
        if path is None:
            continue
        try:
            obj = read_file(path)
            if obj["kind"] != "snapshot":
                raise FreqtuiError(f"{path}: a weights file, not a snapshot")
            out.append(session_info(path, obj))
        except FreqtuiError as exc:
            out.append(
                SessionInfo(folder.name, "", 0, 0, 0, 0, None, None, "", path, error=str(exc))
            )
    return sorted(out, key=lambda s: (s.saved_at, s.id), reverse=True)


def _snapshot_in(folder: Path) -> Path | None:
    for name in (LATEST, PREVIOUS):
        if (folder / name).is_file():
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
        if cand.is_file():
            return cand
        if cand.is_dir():
            found = _snapshot_in(cand)
            if found is None:
                raise FreqtuiError(f"{cand}: a folder with no {LATEST} in it")
            return found
    if text and "/" not in text and Path(root).is_dir():
        matches = sorted(d for d in Path(root).iterdir() if d.is_dir() and d.name.startswith(text))
        if len(matches) == 1:
            return resolve(matches[0], root)
        if len(matches) > 1:
            names = ", ".join(d.name for d in matches[:4])
            raise FreqtuiError(f"{text!r} matches several sessions ({names}); give more of the id")
    raise FreqtuiError(f"{text}: no such file or session in {root} (`freqtui sessions` lists them)")


# ---- resuming -------------------------------------------------------------------------
# RunConfig fields a resume may change: none of them changes the science of the run
RESUMABLE_CHANGES = ("epochs",)
_FLAG_NAMES = {"hidden_size": "--hidden", "num_layers": "--layers", "torch_seed": "--seed"}


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def resumed_config(
    path: Path, config: RunConfig, done_epochs: int, overrides: argparse.Namespace | None
) -> RunConfig:
    """The snapshot's config with the allowed overrides applied; other changes refused."""
    if overrides is None:
        return config
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(RunConfig):
        if f.name == "options":
            continue
        value = getattr(overrides, f.name, None)
        if value is None:
            continue
        old = getattr(config, f.name)
        if f.name == "frequencies":
            value = tuple(float(v) for v in value)
        if value == old:
            continue
        if f.name not in RESUMABLE_CHANGES:
            raise FreqtuiError(
                f"{_flag(f.name)} cannot change when resuming {path} (it was trained with "
                f"{old!r}); only {', '.join(_flag(n) for n in RESUMABLE_CHANGES)} may change; "
                "start a new run for another setting"
            )
        changes[f.name] = value
    options = getattr(overrides, "option", None)
    if options and {**config.options, **dict(options)} != config.options:
        raise FreqtuiError(
            f"--option cannot change when resuming {path} (it was trained with "
            f"{config.options or 'no options'}); start a new run for other options"
        )
    if "epochs" in changes and changes["epochs"] < done_epochs:
        raise FreqtuiError(
            f"--epochs {changes['epochs']}: {path} has already completed {done_epochs} epoch(s)"
        )
    return config.replace(**changes).validated() if changes else config


def run_from_snapshot(
    id_or_path: str | Path,
    overrides: argparse.Namespace | None = None,
    root: Path | None = None,
    *,
    autosave_every: int | None = None,
    save_on_end: bool = False,
) -> TrainingRun:
    """A TrainingRun that continues a snapshot exactly: weights, trainer state (optimizer,
    carried state, position, its RNGs), torch RNG and history. It keeps the run id and
    saves back into the same session folder.

    The torch RNG is the process's own, so it is set here, when the run is built: stop
    (and save) any other run of this process before building this one."""
    from engine.run import History, TrainingRun  # late: run.py imports this module

    root = sessions_dir(root)
    path = resolve(id_or_path, root)
    obj = read_file(path)
    if obj["kind"] != "snapshot":
        raise FreqtuiError(
            f"{path}: a weights file, not a snapshot: it has no trainer state to resume from "
            "(`freqtui eval` reads it)"
        )
    trainer_state = obj["trainer"]
    config = resumed_config(path, obj["config"], int(trainer_state["epoch"]), overrides)
    model = model_from(path, obj)
    try:
        history = History.from_dict(obj["history"])
    except (TypeError, ValueError, KeyError) as exc:
        raise FreqtuiError(f"{path}: incomplete snapshot (history unreadable: {exc})") from None
    run_id = obj["run_id"]
    # save back beside the file when it sits in its own session folder
    home = path.parent.parent if path.parent.name == run_id else root
    try:
        run = TrainingRun(
            config,
            model=model,
            trainer_state=trainer_state,
            history=history,
            run_id=run_id,
            sessions_root=home,
            autosave_every=autosave_every,
            save_on_end=save_on_end,
            torch_rng=obj["torch_rng"],
        )
    except FreqtuiError as exc:
        raise FreqtuiError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FreqtuiError(
            f"{path}: the trainer state does not fit method {config.method!r} ({first[:160]})"
        ) from None
    _check_trainer_fits(path, run, config)
    return run


def _check_trainer_fits(path: Path, run: TrainingRun, config: RunConfig) -> None:
    """Shapes the trainer loaded must match the model: carried state and optimizer."""
    h, c = run.trainer.carried_state
    for name, t in (("h", h), ("c", c)):
        if t.dim() != 3 or t.shape[0] != config.num_layers or t.shape[-1] != config.hidden_size:
            raise FreqtuiError(
                f"{path}: incompatible carried state: {name} has shape {tuple(t.shape)}, a model "
                f"with {config.num_layers} layer(s) of hidden size {config.hidden_size} needs "
                f"({config.num_layers}, batch, {config.hidden_size})"
            )
    optimizer = getattr(run.trainer, "optimizer", None)
    if isinstance(optimizer, torch.optim.Optimizer):
        for group in optimizer.param_groups:
            for p in group["params"]:
                for key, v in optimizer.state.get(p, {}).items():
                    if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != p.shape:
                        raise FreqtuiError(
                            f"{path}: incompatible optimizer state: {key} has shape "
                            f"{tuple(v.shape)} for a parameter of shape {tuple(p.shape)}"
                        )
