"""Session keys: s saves a snapshot, o lists sessions and Enter resumes one where it was
saved, q saves before quitting. Snapshots go to a temporary sessions folder."""

from __future__ import annotations

import threading

import pytest

from engine.store.compare import list_models
from engine.store.files import read_file
from freqtui.widgets.event_log import EventLog
from freqtui.widgets.loss_panel import LossPanel
from tests.tui.conftest import open_browser, trainer_threads, wait_for


def saved(app, reason: str) -> bool:
    return any(m.startswith(f"snapshot saved ({reason})") for m in app.query_one(EventLog).messages)


async def test_s_writes_a_snapshot(app, sessions_root):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        await pilot.press("s")
        await wait_for(pilot, lambda: saved(app, "key"), "the snapshot saved line")
        path = sessions_root / run.run_id / "latest.pt"
        snap = read_file(path)
        assert snap["kind"] == "snapshot" and snap["run_id"] == run.run_id
        assert snap["history"]["rows_total"] > 0
        await pilot.press("q")


@pytest.mark.slow
async def test_o_lists_the_session_and_enter_resumes_from_the_same_row(app, sessions_root):
    first = app.training
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: first.history.rows_total > 0, "the first rows")
        await pilot.press("space")
        await wait_for(pilot, lambda: first.status == "paused", "the worker to park")
        await pilot.press("s")
        await wait_for(pilot, lambda: saved(app, "key"), "the snapshot saved line")
        snap = read_file(sessions_root / first.run_id / "latest.pt")
        row, rows_total = snap["trainer"]["row"], snap["history"]["rows_total"]
        assert row > 0

        table = await open_browser(pilot)
        # this session, then the repository's models/ snapshots
        assert table.row_count == 1 + len(list_models())
        assert str(table.get_cell_at((0, 1))).startswith(first.run_id)  # after the mark column
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.training is not first, "the resumed run")
        resumed = app.training
        assert not first.alive
        assert resumed.run_id == first.run_id
        log = app.query_one(EventLog).messages
        assert f"starting at epoch 1, row {row:,}" in log[0]
        # the resumed run redraws its past: the online-loss trace is there before new rows
        assert app.query_one(LossPanel).overall.values
        await wait_for(pilot, lambda: resumed.history.rows_total > rows_total, "more rows")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert trainer_threads() == []


async def test_q_saves_a_snapshot_then_quits(app, sessions_root):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    snap = read_file(sessions_root / run.run_id / "latest.pt")
    assert snap["history"]["rows_total"] == run.history.rows_total
    assert snap["trainer"]["row"] == run.trainer.row
    assert trainer_threads() == []


async def test_a_failed_run_is_not_saved_on_q(app, sessions_root, monkeypatch):
    run = app.training

    def boom(n):
        raise RuntimeError("injected")

    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        with run.locked():
            monkeypatch.setattr(run.trainer, "train_rows", boom)
        await wait_for(pilot, lambda: app.failure is not None, "the failure")
        assert "injected" in app.failure
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert not (sessions_root / run.run_id / "latest.pt").exists()


async def test_q_ends_the_app_while_the_worker_cannot_stop_and_saves_nothing(app, sessions_root):
    """STOP_TIMEOUT_S: the stop (in its own thread) gives up on a worker stuck in a step,
    says so, saves nothing, and the app ends anyway."""
    run = app.training
    stuck, release = threading.Event(), threading.Event()
    train_rows = run.trainer.train_rows

    def stuck_step(n):
        stuck.set()
        release.wait(60)
        return train_rows(n)

    try:
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
            with run.locked():
                run.trainer.train_rows = stuck_step
            await wait_for(pilot, stuck.is_set, "the worker stuck in a step")
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, "the app to exit")
        assert run.alive  # still stuck: q did not wait for it
        assert "the trainer did not stop in time: no snapshot saved" in app.event_log.messages
        assert not (sessions_root / run.run_id / "latest.pt").exists()
        assert "nothing saved" in app.exit_message
    finally:
        release.set()
        run.join(30)
    assert trainer_threads() == []
