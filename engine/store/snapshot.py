"""Snapshot: a freqtui file as one typed record, read once, validated once, used everywhere.

A file on disk is a dict of tensors and plain values (engine/store/files.py writes and reads
the bytes; engine/store/safeload.py bounds them first). `Snapshot.from_dict` is the one place
that turns such a dict into this record, checking every field it keeps, and `to_dict`
the one place that turns a record back into a file's content. Every reader (resume,
listing, the sidecar, the sweep, compare, export, eval, report) takes a Snapshot.

Two kinds share the type: "snapshot" (everything a run needs to continue exactly:
weights, trainer state with optimizer and carried (h, c), position and RNG states, the
torch RNG state and the metric history) and "weights" (config, weights and, when saved
by a run, its history). Files written before a field existed still read: a missing
`rows_per_epoch` is the config's, a missing `weights` note says it was not recorded, a
missing `planned_epochs` is --epochs.

Torch-free at import: tensors are only looked at once a file (loaded by torch) or a
live run's capture is in hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.history import EvalRecord, History

FORMAT = "freqtui"
FORMAT_VERSION = 1
KINDS = ("weights", "snapshot")
NOTE_CHARS = 200  # the longest weights note kept (engine/store/safeload.py bounds strings too)


def check_header(raw: Any, where: Path | str) -> None:
    """The format marker, version and kind: what a file must say before anything else
    of it is looked at."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise FreqtuiError(f"{where}: not a freqtui file (no freqtui format marker)")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FreqtuiError(f"{where}: corrupted (format version {version!r} is not valid)")
    if version > FORMAT_VERSION:
        raise FreqtuiError(
            f"{where}: format version {version} is newer than this freqtui reads "
            f"({FORMAT_VERSION}); upgrade freqtui"
        )
    kind = raw.get("kind")
    if kind not in KINDS:
        raise FreqtuiError(
            f"{where}: unknown kind {kind!r} (this freqtui reads {', '.join(KINDS)})"
        )


def note_of(kind: str, note: Any) -> str:
    """Which weights a file holds: a snapshot says (final, best on validation at row R,
    or current while training); a weights file holds a run's final weights."""
    if isinstance(note, str) and note:
        return note[:NOTE_CHARS]
    return "final" if kind == "weights" else "not recorded (an older snapshot)"


def nonfinite_weight(model: Mapping[str, Any]) -> str | None:
    """The name of the first weight holding NaN or an infinity, or None."""
    import torch  # the weights are tensors: torch is loaded already

    return next((k for k, w in model.items() if not torch.isfinite(w).all()), None)


@dataclass(frozen=True, eq=False)  # tensors inside: compare `to_dict()`s, not records
class Snapshot:
    """One freqtui file's content, typed. `trainer` and `torch_rng` are None in a weights
    file; `trainer` is the method's own state_dict (engine/training), read here only for
    the position it records."""

    kind: str  # "snapshot" or "weights"
    config: RunConfig
    model: Mapping[str, Any]  # weight name -> tensor (FrequencyLSTM.state_dict())
    history: History
    rows_per_epoch: int
    trainer: Mapping[str, Any] | None = None
    torch_rng: Any = None  # the process's torch RNG state (a uint8 tensor)
    run_id: str = ""
    saved_at: str = ""
    weights: str = ""  # which weights these are, as the trainer said; "" = not recorded
    version: int = FORMAT_VERSION
    checksum: str = field(default="", repr=False)  # as read; a save seals anew

    # ---- what readers ask ---------------------------------------------------------------
    @property
    def method(self) -> str:
        return self.config.method

    @property
    def resumable(self) -> bool:
        return self.kind == "snapshot"

    @property
    def epochs_done(self) -> int:
        """Epochs trained whole (0-based epoch being trained)."""
        return int(self.trainer["epoch"]) if self.trainer is not None else 0

    @property
    def row(self) -> int:
        """Rows done in the epoch being trained."""
        return int(self.trainer["row"]) if self.trainer is not None else 0

    @property
    def planned_epochs(self) -> int:
        """The run's length as it stood: --epochs, or less where the method planned its own
        end (a clock's polish); --epochs in a file written before it was recorded."""
        if self.trainer is None:
            return self.config.epochs
        return int(self.trainer.get("planned_epochs", self.config.epochs))

    @property
    def schedule_version(self) -> int | None:
        """The version of the method's schedule that trained it, where the method has one."""
        v = self.trainer.get("schedule_version") if self.trainer is not None else None
        return v if isinstance(v, int) else None

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.planned_epochs

    @property
    def rows_done(self) -> int:
        return self.epochs_done * self.rows_per_epoch + self.row

    @property
    def last_eval(self) -> EvalRecord | None:
        return self.history.evals[-1] if self.history.evals else None

    @property
    def weights_note(self) -> str:
        return note_of(self.kind, self.weights)

    def refuse_nonfinite(self) -> None:
        """FreqtuiError when a weight holds NaN or an infinity: such weights are never
        saved, so a save never replaces a good file with a broken one."""
        bad = nonfinite_weight(self.model)
        if bad is not None:
            raise FreqtuiError(
                f"the weights hold NaN or infinite values ({bad}): not saved (the file "
                "saved before stays as it was)"
            )

    def build_model(self):  # -> FrequencyLSTM (engine/model.py imports torch)
        """The model the config describes, with these weights (checked when read)."""
        from engine.model import build_model

        model = build_model(self.config)
        model.load_state_dict(self.model)
        return model

    # ---- to and from a file's content ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The content of the file (without its checksum: engine/store/files.py seals it)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "kind": self.kind,
            "saved_at": self.saved_at,
            "config": self.config.to_dict(),
            "model": dict(self.model),
            "history": self.history.to_dict(),
            "rows_per_epoch": self.rows_per_epoch,
        }
        if self.resumable:
            out.update(run_id=self.run_id, trainer=self.trainer, torch_rng=self.torch_rng)
        elif self.run_id:
            out["run_id"] = self.run_id
        if self.weights:
            out["weights"] = self.weights
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: Path | str = "snapshot") -> Snapshot:
        """The one builder from a file's content (after engine/store/safeload.py's bounds, when
        read from disk): every field checked, each failure one FreqtuiError line naming
        `where` and the field."""
        check_header(raw, where)
        kind = raw["kind"]
        try:
            config = RunConfig.from_dict(raw["config"])
        except KeyError:
            raise FreqtuiError(f"{where}: incomplete file (no config)") from None
        except (FreqtuiError, TypeError, ValueError, OverflowError) as exc:
            raise FreqtuiError(f"{where}: its config is invalid ({_first(exc)})") from None
        if kind == "snapshot":
            _check_snapshot(raw, config, where)
        _check_weights(raw.get("model"), config, where)
        try:
            history = History.from_dict(raw.get("history") or {})
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise FreqtuiError(f"{where}: its history is unreadable ({_first(exc)})") from None
        rows = raw.get("rows_per_epoch") or config.rows_per_set
        if not _count(rows) or rows < 1:
            raise FreqtuiError(f"{where}: rows_per_epoch is {rows!r}, not a count of rows")
        for key in ("run_id", "saved_at", "weights", "checksum"):
            if not isinstance(raw.get(key, ""), str):
                raise FreqtuiError(f"{where}: {key} is a {type(raw[key]).__name__}, not text")
        return cls(
            kind=kind,
            config=config,
            model=raw["model"],
            history=history,
            rows_per_epoch=int(rows),
            trainer=raw.get("trainer") if kind == "snapshot" else None,
            torch_rng=raw.get("torch_rng") if kind == "snapshot" else None,
            run_id=raw.get("run_id", ""),
            saved_at=raw.get("saved_at", ""),
            weights=raw.get("weights", ""),
            version=raw["version"],
            checksum=raw.get("checksum", ""),
        )


def _check_snapshot(raw: dict[str, Any], config: RunConfig, where: Path | str) -> None:
    """What a snapshot needs to be resumed: its run id, trainer state for the config's
    method at a valid position, history and torch RNG state."""
    import torch

    required = {
        "run_id": str,
        "saved_at": str,
        "trainer": dict,
        "history": dict,
        "torch_rng": torch.Tensor,
    }
    for key, kind in required.items():
        if not isinstance(raw.get(key), kind):
            raise FreqtuiError(f"{where}: incomplete snapshot (no valid {key})")
    trainer = raw["trainer"]
    if trainer.get("method") != config.method:
        raise FreqtuiError(
            f"{where}: inconsistent snapshot (trainer state is for {trainer.get('method')!r}, "
            f"config says {config.method!r})"
        )
    for key in ("epoch", "row"):
        if not _count(trainer.get(key)):
            raise FreqtuiError(f"{where}: incomplete snapshot (trainer has no valid {key})")
    if "planned_epochs" in trainer and not _count(trainer["planned_epochs"]):
        raise FreqtuiError(f"{where}: incomplete snapshot (trainer has no valid planned_epochs)")
    if raw["torch_rng"].dtype != torch.uint8:
        raise FreqtuiError(f"{where}: incomplete snapshot (torch_rng is not a byte tensor)")


def _check_weights(weights: Any, config: RunConfig, where: Path | str) -> None:
    """The weights fit the model the config describes: names, shapes, dtypes, finite."""
    import torch

    from engine.model import build_model

    if not isinstance(weights, dict):
        raise FreqtuiError(f"{where}: incomplete file (no model weights)")
    expected = build_model(config).state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise FreqtuiError(
            f"{where}: weights do not fit FrequencyLSTM (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for k, v in expected.items():
        w = weights[k]
        if not isinstance(w, torch.Tensor) or w.shape != v.shape:
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise FreqtuiError(
                f"{where}: incompatible weights: {k} has shape {got}, a model with hidden size "
                f"{config.hidden_size} needs {tuple(v.shape)}"
            )
        if w.dtype != v.dtype:
            raise FreqtuiError(f"{where}: incompatible weights: {k} is {w.dtype}, not {v.dtype}")
    bad = nonfinite_weight(weights)
    if bad is not None:
        raise FreqtuiError(f"{where}: weights hold NaN or infinite values ({bad})")


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**62


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
