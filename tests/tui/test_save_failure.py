"""A save that fails while the console trains: one warning, the run goes on, and the
status bar keeps saying "not saved" until a save works again (here: the key s)."""

from __future__ import annotations

import pytest

from engine.errors import FreqtuiError
from engine.store import sessions
from freqtui.widgets.event_log import EventLog
from freqtui.widgets.status_bar import StatusBar
from tests.tui.conftest import wait_for


@pytest.mark.slow
async def test_a_failing_autosave_warns_once_and_stays_on_screen_until_a_save_works(
    make_app, monkeypatch
):
    app = make_app()
    run = app.training
    run.autosave_every = 200  # several autosaves a second on the short signal
    attempts = []
    real = sessions.write_snapshot

    def full_disk(folder, payload):
        attempts.append(payload.history.rows_total)
        raise FreqtuiError(
            f"{folder}/latest.pt: cannot write the snapshot (No space left on device)"
        )

    monkeypatch.setattr(sessions, "write_snapshot", full_disk)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: len(attempts) >= 3, "three failed autosaves")
        await wait_for(pilot, lambda: "not saved" in app.query_one(StatusBar).state, "the badge")
        rows = run.history.rows_total
        await wait_for(pilot, lambda: run.history.rows_total > rows + 200, "training going on")
        log = app.query_one(EventLog).messages
        assert sum("NOT SAVED" in m for m in log) == 1, log
        assert "not saved" in app.query_one(StatusBar).state  # still there
        monkeypatch.setattr(sessions, "write_snapshot", real)  # space is back
        await pilot.press("s")
        await wait_for(
            pilot, lambda: "not saved" not in app.query_one(StatusBar).state, "the badge gone"
        )
        assert (run.sessions_root / run.run_id / "latest.pt").exists()
        await pilot.press("q")
