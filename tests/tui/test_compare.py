"""Comparing sessions in the console: space marks rows in the session browser (sessions
and the repository's models/ snapshots), `c` opens the comparison with both sessions' ids,
their latest frozen MSE and their overlaid histories."""

from __future__ import annotations

from textual.widgets import DataTable
from textual_plotext import PlotextPlot

from engine.compare import list_models
from engine.run import TrainingRun
from freqtui.compare import fmt_mse
from freqtui.screens.compare import CompareScreen
from freqtui.screens.sessions import MARK, SessionBrowser
from tests.tui.conftest import short_config, wait_for


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
    for r in range(table.row_count):
        if str(table.get_row_at(r)[0]).split(" (")[0] == text:
            return r
    raise AssertionError(f"{text} is not in the browser")


async def test_marking_two_sessions_and_c_compares_them(make_app, sessions_root):
    a, b = tiny_session(sessions_root, 0), tiny_session(sessions_root, 1)
    mse = {r.run_id: r.history.evals[-1].test.overall for r in (a, b)}
    assert fmt_mse(mse[a.run_id]) != fmt_mse(mse[b.run_id])  # seeds give different numbers
    app = make_app(autostart=False)
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionBrowser), "the browser")
        table = app.screen.query_one(DataTable)
        # the committed models/ snapshots are listed after the sessions
        models = [m for m in list_models() if not m.error]
        assert table.row_count == 2 + len(list_models())
        for m in models:
            row_of(table, f"models/{m.path.name}")
        for run in (a, b):
            table.move_cursor(row=row_of(table, run.run_id))
            await pilot.press("space")
        for run in (a, b):  # the marks show in the browser's last column
            assert str(table.get_row_at(row_of(table, run.run_id))[-1]) == MARK
        assert sorted(app.screen.marked) == sorted(row_of(table, r.run_id) for r in (a, b))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the comparison")
        await pilot.pause(0.2)
        screen = app.screen
        shown = screen.query_one(DataTable)
        rows = {str(shown.get_row_at(r)[0]): shown.get_row_at(r) for r in range(shown.row_count)}
        assert set(rows) == {a.run_id, b.run_id}
        best = min(mse, key=mse.get)
        for run_id, value in mse.items():
            test_overall = str(rows[run_id][3])  # id, method, overall train, overall test
            assert test_overall == fmt_mse(value) + ("*" if run_id == best else "")
        plot = screen.query_one(PlotextPlot)
        assert plot.size.width > 40 and plot.size.height >= 8
        drawn = plot.plt.build()
        for run in (a, b):
            assert run.run_id in drawn  # the legend names both
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionBrowser), "back")
        await pilot.press("escape")
        await pilot.press("q")
