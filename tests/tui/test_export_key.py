"""The console's `x` key writes the metric history as it stands (history.csv and
history.json in the session folder, the same table as `freqtui export`) and says where;
a folder it cannot write is a notification, not a crash."""

from __future__ import annotations

import csv
import json

import pytest

from engine.export import COLUMN_NAMES
from freqtui.widgets.event_log import EventLog
from tests.tui.conftest import wait_for


@pytest.mark.slow
async def test_x_writes_the_metric_history_into_the_session_folder(app):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        await pilot.press("e")  # a frozen evaluation to export
        await wait_for(pilot, lambda: len(run.history.evals) == 1, "a frozen evaluation")
        await pilot.press("x")
        folder = run.sessions_root / run.run_id
        await wait_for(pilot, lambda: (folder / "history.json").exists(), "the export")
        rows = list(csv.DictReader((folder / "history.csv").open()))
        assert tuple(rows[0]) == COLUMN_NAMES
        e = run.history.evals[0]
        frozen = [r for r in rows if r["kind"] == "frozen"]
        assert {(int(r["epoch"]), int(r["row"])) for r in frozen} == {(e.epoch, e.row)}
        test_all = next(r for r in frozen if r["set"] == "test" and r["frequency_hz"] == "all")
        assert float(test_all["value"]) == e.test.overall
        assert any(r["kind"] == "online" for r in rows)
        doc = json.loads((folder / "history.json").read_text())
        assert doc["run_id"] == run.run_id and len(doc["rows"]) == len(rows)
        log = app.query_one(EventLog).messages
        assert any(str(folder / "history.csv") in m for m in log)
        await pilot.press("q")


async def test_x_where_the_session_folder_cannot_take_a_file_notifies(app):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        folder = run.sessions_root / run.run_id
        (folder / "history.csv").mkdir(parents=True)  # a folder where the file goes
        await pilot.press("x")
        await pilot.pause(0.2)
        notes = [str(n.message) for n in app._notifications]
        assert any("history.csv" in n and "folder" in n for n in notes), notes
        assert not (folder / "history.json").exists()
        await pilot.press("q")
