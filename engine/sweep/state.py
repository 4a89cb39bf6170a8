"""A sweep cell's folder on the driver's disk: nothing yet, an interrupted snapshot or a
finished one; and each new snapshot a worker returns, stored and read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import FreqtuiError
from engine.history import EvalRecord
from engine.store.files import read
from engine.store.sessions import LATEST, PREVIOUS, store, write_sidecar
from engine.store.snapshot import Snapshot
from engine.sweep.grid import Cell


@dataclass
class CellState:
    cell: Cell
    folder: Path
    snapshot: bytes | None = None
    finished: bool = False
    done_fraction: float = 0.0
    last_eval: EvalRecord | None = None
    rows_total: int = 0
    train_seconds: float = 0.0


def load_state(cell: Cell, folder: Path) -> CellState:
    """What the cell's folder holds: nothing yet, an interrupted snapshot or a finished one."""
    state = CellState(cell, folder)
    errors = []
    for name in (LATEST, PREVIOUS):
        path = folder / name
        if not path.is_file():
            continue
        try:
            snap = read(path)
        except FreqtuiError as exc:
            errors.append(str(exc))
            continue
        if snap.config.to_dict() != cell.config.to_dict():
            raise FreqtuiError(f"{path}: trained with other settings than cell {cell.name}")
        _fill(state, snap, path.read_bytes())
        return state
    if errors:
        raise FreqtuiError(f"cell {cell.name}: no readable snapshot ({errors[0]})")
    return state


def _fill(state: CellState, snap: Snapshot, data: bytes) -> None:
    state.snapshot = data
    # a clock plans its own length (its polish), at most --epochs
    state.finished = snap.finished
    total = snap.planned_epochs * snap.rows_per_epoch
    state.done_fraction = 1.0 if state.finished else snap.rows_done / total
    state.last_eval = snap.last_eval
    state.rows_total = snap.history.rows_total
    state.train_seconds = snap.history.train_seconds


def store_cell(state: CellState, data: bytes) -> None:
    """Write a cell's new snapshot (engine/store/sessions.py's `store`: the old one kept as
    previous.pt), then read it back: the checksum proves the bytes crossed the network
    whole. Its sidecar follows, as after any save, so `freqtui sessions` lists the sweep's
    cells without loading torch."""
    latest = store(state.folder, data)
    snap = read(latest)
    write_sidecar(latest, snap)
    _fill(state, snap, data)
