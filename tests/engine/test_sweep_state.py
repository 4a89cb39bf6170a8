"""A sweep cell's snapshot stored by the driver is a session like any other: rotated,
read back, and with the sidecar a save writes, so listing the sweep needs no torch."""

from __future__ import annotations

from engine.store.files import read
from engine.store.sessions import LATEST, PREVIOUS, read_sidecar, session_info
from engine.sweep.grid import Cell
from engine.sweep.state import CellState, store_cell


def test_a_stored_cell_has_the_sidecar_a_save_writes(tmp_path, trained_session):
    src, run_id = trained_session
    data = (src / run_id / LATEST).read_bytes()
    snap = read(src / run_id / LATEST)
    state = CellState(Cell(run_id, {}, 0, snap.config), tmp_path / "sweep" / run_id)

    for _ in range(2):  # the second store keeps the first as previous.pt
        store_cell(state, data)
        listed = read_sidecar(state.folder)
        assert listed is not None, "no sidecar (or a stale one) beside the stored snapshot"
        assert listed == session_info(state.folder / LATEST, snap)
    assert (state.folder / PREVIOUS).read_bytes() == data
    assert state.rows_total == snap.history.rows_total
