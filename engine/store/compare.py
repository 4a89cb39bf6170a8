"""Comparing sessions: each one's frozen-MSE history and its latest evaluation, and the
per-frequency table the console and `freqtui compare` show.

Only frozen MSE (weights fixed) is compared here; online loss never enters a comparison.
A number is only ranked against numbers measured on the same data: sessions are grouped
by their data sets (frequencies, fs, duration, amplitude range, phase scale and the
train/test noise seeds), and the best of a column is marked within a group of two or more,
never across groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import FreqtuiError
from engine.store.files import read
from engine.store.sessions import SessionInfo, resolve, session_info


@dataclass(frozen=True)
class SessionHistory:
    """One session's (or snapshot's) frozen evaluations, oldest first."""

    id: str
    method: str
    phase_scale: float
    frequencies: tuple[float, ...]
    path: Path
    duration: float
    fs: float
    amplitude: tuple[float, float]  # the amplitude range (low, high)
    train_seed: int  # the noise seeds of the train and test sets
    test_seed: int
    rows: tuple[int, ...]  # rows trained at each evaluation
    train: tuple[float, ...]  # frozen MSE train, overall, at each evaluation
    test: tuple[float, ...]
    latest_train: tuple[float, ...] | None  # (overall, per frequency...) of the last one
    latest_test: tuple[float, ...] | None

    @property
    def label(self) -> str:
        return f"{self.id} ({self.method}, {self.data_text})"

    @property
    def data(self) -> tuple[Any, ...]:
        """What decides the data the frozen MSEs were measured on: equal for two sessions
        exactly when their train and test sets are the same."""
        return (
            self.frequencies,
            self.fs,
            self.duration,
            self.amplitude,
            self.phase_scale,
            self.train_seed,
            self.test_seed,
        )

    @property
    def data_text(self) -> str:
        """The data in a few words: '10 s, phase 1, seeds 1/2' (train/test)."""
        return f"{self.duration:g} s, phase {self.phase_scale:g}, seeds {self.seeds_text}"

    @property
    def seeds_text(self) -> str:
        return f"{self.train_seed}/{self.test_seed}"


def load_history(path: Path) -> SessionHistory:
    """Read a snapshot (or a weights file that carries a history) and keep its evaluations."""
    snap = read(path)
    config, evals, last = snap.config, snap.history.evals, snap.last_eval
    # a session's own folder names it by its id; a file elsewhere (models/) by its name
    in_session = snap.run_id and path.parent.name == snap.run_id
    return SessionHistory(
        id=snap.run_id if in_session else path.stem,
        method=config.method,
        phase_scale=float(config.phase_scale),
        frequencies=tuple(config.frequencies),
        path=Path(path),
        duration=float(config.duration),
        fs=float(config.fs),
        amplitude=(float(config.amp_low), float(config.amp_high)),
        train_seed=int(config.train_seed),
        test_seed=int(config.test_seed),
        rows=tuple(e.rows_total for e in evals),
        train=tuple(e.train.overall for e in evals),
        test=tuple(e.test.overall for e in evals),
        latest_train=(last.train.overall, *last.train.per_block) if last else None,
        latest_test=(last.test.overall, *last.test.per_block) if last else None,
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
    """Rows = sessions, grouped by data (the sessions of the first group first, in the
    order given); columns = (overall, f1, f2, …) × (train, test) of the latest frozen
    evaluation. `values[r][c]` is None for a session never evaluated. `group[r]` is the
    index of row r's data in `groups`; `best[c]` holds, for each group of two or more
    sessions, the row with the least value of column c in that group: a best is never
    taken across groups."""

    columns: tuple[tuple[str, str], ...]  # (frequency label, "train" | "test")
    sessions: tuple[SessionHistory, ...]
    values: tuple[tuple[float | None, ...], ...]
    group: tuple[int, ...]
    groups: tuple[str, ...]  # each group's data in words (SessionHistory.data_text)
    best: tuple[frozenset[int], ...]

    def is_best(self, row: int, column: int) -> bool:
        return row in self.best[column]

    def ranking_note(self) -> str:
        """One line saying what the marks mean here, or why nothing is ranked."""
        sizes = [self.group.count(g) for g in range(len(self.groups))]
        if len(self.groups) == 1:
            if sizes[0] < 2:
                return "one session: nothing to rank"
            return f"one data set ({self.groups[0]}): best in each column marked"
        sets = "; ".join(f"{set_name(g)}: {text}" for g, text in enumerate(self.groups))
        if max(sizes) < 2:
            return (
                f"not ranked: each session was evaluated on different data ({sets}), "
                "so their frozen MSEs do not compare"
            )
        alone = [set_name(g) for g, n in enumerate(sizes) if n < 2]
        note = f"; {', '.join(alone)}: one session, not ranked" if alone else ""
        return (
            f"{len(self.groups)} data sets ({sets}): best marked within a set, never across "
            f"sets{note}"
        )


def set_name(g: int) -> str:
    """A data set's short name in the table: A, B, … Z, then 27, 28 …"""
    return chr(ord("A") + g) if g < 26 else str(g + 1)


def compare_table(histories: list[SessionHistory]) -> CompareTable:
    if not histories:
        raise FreqtuiError("nothing to compare: name at least one session")
    keys: list[tuple[Any, ...]] = []
    for h in histories:
        if h.data not in keys:
            keys.append(h.data)
    order = sorted(range(len(histories)), key=lambda r: keys.index(histories[r].data))
    histories = [histories[r] for r in order]
    group = tuple(keys.index(h.data) for h in histories)
    texts = tuple(next(h.data_text for h in histories if h.data == k) for k in keys)
    freqs = histories[0].frequencies
    labels = ["overall"] + [f"f={f:g} Hz" for f in freqs]
    if any(h.frequencies != freqs for h in histories):
        labels = ["overall"]  # different frequency sets share only the overall column
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
        marked: set[int] = set()
        for g in range(len(keys)):
            members = [r for r in range(len(histories)) if group[r] == g]
            found = [(values[r][c], r) for r in members if values[r][c] is not None]
            if len(members) >= 2 and found:
                marked.add(min(found)[1])
        best.append(frozenset(marked))
    return CompareTable(columns, tuple(histories), tuple(values), group, texts, tuple(best))


def models_dir() -> Path:
    """The repository's `models/` folder (trained snapshots committed with the code)."""
    return Path(__file__).resolve().parents[2] / "models"


def list_models(folder: Path | None = None) -> list[SessionInfo]:
    """The snapshots in `folder` (default: the repository's models/), by name; unreadable
    ones say why, and weights files (no trainer state) are left out."""
    folder = models_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    out: list[SessionInfo] = []
    for path in sorted(folder.glob("*.pt")):
        try:
            snap = read(path)
        except FreqtuiError as exc:
            out.append(SessionInfo(path.stem, "", 0, 0, 0, 0, None, None, "", path, error=str(exc)))
            continue
        if snap.resumable:
            out.append(session_info(path, snap))
    return out
