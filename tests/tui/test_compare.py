"""Comparing sessions in the console: space marks rows in the session browser (sessions
and the repository's models/ snapshots), `c` opens the comparison with both sessions' ids,
their latest frozen MSE and their overlaid histories."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable
from textual_plotext import PlotextPlot

from engine.run import TrainingRun
from engine.store.compare import list_models, load_history
from freqtui.screens.compare import MARKERS, CompareScreen
from freqtui.screens.sessions import MARK, SessionBrowser
from freqtui.text import fmt_mse
from tests.tui.conftest import open_browser, short_config, wait_for


def tiny_session(root, seed: int) -> TrainingRun:
    """A finished one-epoch session (400 rows) with one frozen evaluation, saved."""
    run = TrainingRun(
        short_config(duration=0.1, epochs=1, torch_seed=seed),
        state_check=False,
        sessions_root=root,
        save_on_end=True,
    )
    run.start()
    run.join(60)
    assert run.status == "finished" and run.history.evals
    return run


def row_of(table: DataTable, text: str) -> int:
    """The row of the session browser whose id (or models/ name) is `text`."""
    for r, row in enumerate(table.ordered_rows):
        if str(table.get_cell(row.key, "id")).split(" (")[0] == text:
            return r
    raise AssertionError(f"{text} is not in the browser")


@pytest.mark.slow
async def test_marking_two_sessions_and_c_compares_them(make_app, sessions_root):
    a, b = tiny_session(sessions_root, 0), tiny_session(sessions_root, 1)
    mse = {r.run_id: r.history.evals[-1].test.overall for r in (a, b)}
    assert fmt_mse(mse[a.run_id]) != fmt_mse(mse[b.run_id])  # seeds give different numbers
    app = make_app(autostart=False)
    async with app.run_test(size=(150, 45)) as pilot:
        table = await open_browser(pilot)
        # the committed models/ snapshots are listed after the sessions
        models = [m for m in list_models() if not m.error]
        assert table.row_count == 2 + len(list_models())
        for m in models:
            row_of(table, f"models/{m.path.name}")
        for run in (a, b):
            table.move_cursor(row=row_of(table, run.run_id))
            await pilot.press("space")
        for run in (a, b):  # the marks show in the browser's first column
            assert str(table.get_row_at(row_of(table, run.run_id))[0]) == MARK
        assert sorted(app.screen.marked) == sorted(row_of(table, r.run_id) for r in (a, b))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the comparison")
        await wait_for(pilot, lambda: app.screen.loaded, "its files read")
        await pilot.pause(0.2)
        screen = app.screen
        shown = screen.query_one(DataTable)
        rows = {str(shown.get_row_at(r)[1]): shown.get_row_at(r) for r in range(shown.row_count)}
        assert set(rows) == {a.run_id, b.run_id}
        best = min(mse, key=mse.get)  # the same data (only the torch seed differs): ranked
        for run_id, value in mse.items():
            # set and line marker, id, method, duration, phase, seeds, then the test overall
            assert str(rows[run_id][0]).split()[0] == "A"
            assert [str(c) for c in rows[run_id][1:6]] == [
                run_id,
                "handoff",
                "0.1 s",
                "1",
                "1/2",
            ]
            test_overall = str(rows[run_id][6])
            assert test_overall == fmt_mse(value) + ("*" if run_id == best else "")
        assert "one data set" in str(screen.query_one("#compare-ranking").render())
        plot = screen.query_one(PlotextPlot)
        assert plot.size.width > 40 and plot.size.height >= 8
        drawn = plot.plt.build()
        for run in (a, b):
            assert run.run_id in drawn  # the legend names both
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionBrowser), "back")
        await pilot.press("escape")
        await pilot.press("q")


async def test_the_models_compare_at_120x40_every_frequency_shown_ranked_within_their_data(
    make_app,
):
    """The committed models/: two phase scales (two data sets), two sessions each. At
    120×40 every frequency's column is on screen; the best is marked within each phase
    scale only; the lines differ by marker; the x ticks read 100M, not 100000000."""
    models = [m for m in list_models() if not m.error]
    assert len({load_history(m.path).phase_scale for m in models}) == 2
    app = make_app(autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await open_browser(pilot)
        for m in models:
            table.move_cursor(row=row_of(table, f"models/{m.path.name}"))
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the comparison")
        await wait_for(pilot, lambda: app.screen.loaded, "its files read")
        await pilot.pause(0.3)
        screen = app.screen
        shown = screen.query_one(DataTable)
        assert shown.scroll_x == 0 and shown.virtual_size.width <= shown.size.width
        header = " ".join(str(c.label) for c in shown.ordered_columns)
        for label in ("overall", "f=1 Hz", "f=3 Hz", "f=5 Hz", "f=7 Hz", "duration", "phase"):
            assert label in header
        last_line = shown.render_line(0).text  # the header's first row, as drawn
        assert "f=7 Hz" in last_line
        assert "2 data sets" in str(screen.query_one("#compare-ranking").render())
        data = screen.data
        for c in range(len(data.columns)):  # one best per phase scale, in every column
            assert {data.sessions[r].phase_scale for r in data.best[c]} == {1.0, 0.01}
        drawn = screen.query_one(PlotextPlot).plt.build()
        assert "M" in drawn and "100000000" not in drawn
        markers = {MARKERS[r] for r in range(len(models))}
        assert all(m in drawn for m in markers)  # each line drawn with its own marker
        # and the table's first column pairs each session with its marker
        assert {str(shown.get_row_at(r)[0]).split()[1] for r in range(len(models))} == markers


@pytest.mark.slow
async def test_at_80x24_the_tables_say_they_scroll_and_arrows_scroll_them(make_app):
    models = [m for m in list_models() if not m.error]
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        await pilot.pause(0.2)
        assert "← → scrolls" in str(app.screen.query_one("#browser-state").render())
        table = app.screen.query_one(DataTable)
        await pilot.press("right", "right", "right")
        await wait_for(pilot, lambda: table.scroll_x > 0, "the browser to scroll")
        for m in models:
            table.move_cursor(row=row_of(table, f"models/{m.path.name}"))
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the comparison")
        await wait_for(pilot, lambda: app.screen.loaded, "its files read")
        await pilot.pause(0.2)
        assert "← → scroll the table" in str(app.screen.query_one("#compare-help").render())
        shown = app.screen.query_one(DataTable)
        await pilot.press(*["right"] * 10)
        await wait_for(pilot, lambda: shown.scroll_x > 0, "the comparison to scroll")
