"""Comparing sessions: each one's frozen-MSE history and its latest evaluation, and the
per-frequency table the console and `freqtui compare` show (best in each column marked).

Only frozen MSE (weights fixed) is compared here; online loss never enters a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import FreqtuiError
from engine.files import read_file
from engine.sessions import SessionInfo, resolve, session_info


@dataclass(frozen=True)
class SessionHistory:
    """One session's (or snapshot's) frozen evaluations, oldest first."""

    id: str
    method: str
    phase_scale: float
    frequencies: tuple[float, ...]
    path: Path
    rows: tuple[int, ...]  # rows trained at each evaluation
    train: tuple[float, ...]  # frozen MSE train, overall, at each evaluation
    test: tuple[float, ...]
    latest_train: tuple[float, ...] | None  # (overall, per frequency...) of the last one
    latest_test: tuple[float, ...] | None

    @property
    def label(self) -> str:
        return f"{self.id} ({self.method}, phase {self.phase_scale:g})"


def load_history(path: Path) -> SessionHistory:
    """Read a snapshot (or a weights file that carries a history) and keep its evaluations."""
    obj = read_file(path)
    config = obj["config"]
    history: dict[str, Any] = obj.get("history") or {}
    evals = history.get("evals") or []
    if not isinstance(evals, list):
        raise FreqtuiError(f"{path}: its history is unreadable (evals is not a list)")
    try:
        rows = tuple(int(e["rows_total"]) for e in evals)
        train = tuple(float(e["train"]["overall"]) for e in evals)
        test = tuple(float(e["test"]["overall"]) for e in evals)
        last = evals[-1] if evals else None
        latest = (
            tuple(
                (float(last[s]["overall"]), *(float(v) for v in last[s]["per_frequency"]))
                for s in ("train", "test")
            )
            if last
            else (None, None)
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FreqtuiError(f"{path}: its history is unreadable ({exc!r})") from None
    run_id = str(obj.get("run_id") or "")
    # a session's own folder names it by its id; a file elsewhere (models/) by its name
    in_session = run_id and path.parent.name == run_id
    return SessionHistory(
        id=run_id if in_session else path.stem,
        method=config.method,
        phase_scale=float(config.phase_scale),
        frequencies=tuple(config.frequencies),
        path=Path(path),
        rows=rows,
        train=train,
        test=test,
        latest_train=latest[0],
        latest_test=latest[1],
    )


def load_histories(ids_or_paths: list[str | Path], root: Path) -> list[SessionHistory]:
    """Each session id, folder or file, resolved under `root` and loaded; the same file
    named twice is compared once."""
    out: list[SessionHistory] = []
    seen: set[Path] = set()
    for item in ids_or_paths:
        path = resolve(item, root)
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        out.append(load_history(path))
    return out


@dataclass(frozen=True)
class CompareTable:
    """Rows = sessions; columns = (overall, f1, f2, …) × (train, test) of the latest frozen
    evaluation. `values[r][c]` is None for a session never evaluated; `best[c]` is the row
    holding the least value of column c (None if no row has one)."""

    columns: tuple[tuple[str, str], ...]  # (frequency label, "train" | "test")
    sessions: tuple[SessionHistory, ...]
    values: tuple[tuple[float | None, ...], ...]
    best: tuple[int | None, ...]


def compare_table(histories: list[SessionHistory]) -> CompareTable:
    if not histories:
        raise FreqtuiError("nothing to compare: name at least one session")
    freqs = histories[0].frequencies
    mixed = [h.id for h in histories if h.frequencies != freqs]
    labels = ["overall"] + [f"f={f:g} Hz" for f in freqs]
    if mixed:  # different frequency sets share only the overall column
        labels = ["overall"]
    columns = tuple((label, s) for label in labels for s in ("train", "test"))
    values = []
    for h in histories:
        row: list[float | None] = []
        for i in range(len(labels)):
            for latest in (h.latest_train, h.latest_test):
                row.append(latest[i] if latest is not None else None)
        values.append(tuple(row))
    best = []
    for c in range(len(columns)):
        found = [(v[c], r) for r, v in enumerate(values) if v[c] is not None]
        best.append(min(found)[1] if found else None)
    return CompareTable(columns, tuple(histories), tuple(values), tuple(best))


def models_dir() -> Path:
    """The repository's `models/` folder (trained snapshots committed with the code)."""
    return Path(__file__).resolve().parents[1] / "models"


def list_models(folder: Path | None = None) -> list[SessionInfo]:
    """The snapshots in `folder` (default: the repository's models/), by name; unreadable
    ones say why, and weights files (no trainer state) are left out."""
    folder = models_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    out: list[SessionInfo] = []
    for path in sorted(folder.glob("*.pt")):
        try:
            obj = read_file(path)
        except FreqtuiError as exc:
            out.append(SessionInfo(path.stem, "", 0, 0, 0, 0, None, None, "", path, error=str(exc)))
            continue
        if obj["kind"] == "snapshot":
            out.append(session_info(path, obj))
    return out
