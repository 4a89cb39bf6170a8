"""The console's keys, pressed through Pilot, checked against what the engine did."""

from __future__ import annotations

import math

import pytest
import torch
from textual.widgets import TabbedContent

from freqtui.text import fmt_loss
from freqtui.widgets.event_log import EventLog
from freqtui.widgets.loss_panel import LossPanel
from freqtui.widgets.plots_panel import PlotsPanel
from freqtui.widgets.status_bar import StatusBar
from tests.tui.conftest import trainer_threads, wait_for


@pytest.mark.slow
async def test_space_pauses_and_resumes_training(app):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        await pilot.press("space")
        await wait_for(pilot, lambda: run.status == "paused", "the worker to park")
        rows, row = run.history.rows_total, run.trainer.row
        for _ in range(6):  # the UI keeps polling; the worker must not move
            await pilot.pause(0.05)
        assert (run.history.rows_total, run.trainer.row) == (rows, row)
        assert app.query_one(StatusBar).state == "paused"
        await pilot.press("space")
        await wait_for(pilot, lambda: run.history.rows_total > rows, "rows after resuming")
        await wait_for(pilot, lambda: app.query_one(StatusBar).state == "running", "running")
        log = app.query_one(EventLog).messages
        assert any(m.startswith("paused at row") for m in log)
        assert any(m.startswith("resumed at row") for m in log)
        await pilot.press("q")


async def test_e_shows_a_frozen_mse_entry(app):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        table = app.query_one(LossPanel)
        assert "frozen at" not in table.render().plain  # no evaluation yet
        await pilot.press("e")
        await wait_for(pilot, lambda: len(table.evals) == 1, "a frozen-MSE row on screen")
        entry = run.history.evals[0]
        lines = [line.plain for line in table.lines(76)]
        overall = next(line for line in lines if line.startswith("all"))
        frozen = overall.split("│")[1].split()
        assert frozen == [fmt_loss(entry.train.overall), fmt_loss(entry.test.overall)]
        for b, v in enumerate(entry.test.per_block):
            row = next(line for line in lines if line.startswith(f"f{b + 1} "))
            assert row.split("│")[1].split()[1] == fmt_loss(v)
        assert f"frozen at e{entry.epoch} r{entry.row:,}" in lines[-1]
        assert any(
            m.startswith("frozen MSE (weights fixed)") for m in app.query_one(EventLog).messages
        )
        # the plots now draw the model output of that evaluation
        assert app.query_one(PlotsPanel).outputs is not None
        await pilot.press("q")


async def test_q_stops_the_worker_and_exits(app):
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.training.history.rows_total > 0, "the first rows")
        assert trainer_threads()
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert not app.training.alive
    assert trainer_threads() == []
    assert app.return_value == 0
    assert app.training.status == "stopped"


async def test_focus_keys_show_one_frequency_then_all(make_app):
    app = make_app(autostart=False)  # the layout's keys: no training needed to press them
    async with app.run_test(size=(80, 24)) as pilot:
        plots = app.query_one(PlotsPanel)
        assert not plots.display or not plots.region.area  # narrow: training panels first
        await pilot.press("2")
        await pilot.pause()
        assert app.screen.has_class("-plots") and plots.region.area > 0
        assert plots.query_one(TabbedContent).active == "tab-freq"
        shown = [i for i in range(4) if plots.query_one(f"#freq-{i}").display]
        assert shown == [1]
        big = plots.query_one("#freq-1").region
        await pilot.press("0")
        await pilot.pause()
        shown = [i for i in range(4) if plots.query_one(f"#freq-{i}").display]
        assert shown == [0, 1, 2, 3]
        small = plots.query_one("#freq-1").region
        assert big.area > 2 * small.area
        await pilot.press("p")
        await pilot.pause()
        assert plots.query_one(TabbedContent).active == "tab-osc"
        await pilot.press("q")


async def test_injected_nan_shows_a_failure_and_the_app_stays_up(app):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        with run.locked(), torch.no_grad():  # between two chunks: poison the output layer
            run.model.fc.weight.fill_(math.nan)
        await wait_for(pilot, lambda: app.failure is not None, "the failure to reach the app")
        await pilot.pause(0.2)
        assert app.is_running
        assert not run.alive
        assert app.query_one(StatusBar).state == "failed"
        assert "nan" in app.failure.lower()
        assert any(m.startswith("FAILED:") for m in app.query_one(EventLog).messages)
        await pilot.press("space")  # keys still answer; nothing to pause
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert trainer_threads() == []
    assert app.return_value == 1


@pytest.mark.slow
async def test_plots_redraw_only_when_their_data_changes(app):
    run = app.training
    async with app.run_test(size=(120, 40)) as pilot:
        plots = app.query_one(PlotsPanel)
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        frozen, live = plots.redraws["freq"], plots.redraws["live"]
        rows = run.history.rows_total
        await wait_for(pilot, lambda: run.history.rows_total > rows + 50, "more rows")
        # new rows are no new frozen evaluation, and the hidden live tab is not rebuilt
        assert plots.redraws["freq"] == frozen
        assert plots.redraws["live"] == live
        plots.show_tab("tab-live")  # show the live rows
        await wait_for(pilot, lambda: plots.redraws["live"] > live, "the live plot to redraw")
        await pilot.press("e")
        await wait_for(pilot, lambda: plots.redraws["freq"] > frozen, "the frozen plots")
        await pilot.press("q")
