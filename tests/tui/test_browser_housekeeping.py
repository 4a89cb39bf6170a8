"""The session browser (`o`) at 80×24: the compare mark, the frozen MSE and the saved-at
time are on screen; `s` sorts by frozen MSE and back to date, `f` shows one method at a
time, `d` deletes the highlighted session after a question (n keeps it, y deletes its
folder), and refuses the live session and the repository's models/."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from engine.store.compare import list_models
from freqtui.screens.confirm import ConfirmScreen
from freqtui.screens.sessions import MARK, SessionBrowser, _mse, _saved
from tests.tui.conftest import open_browser, wait_for
from tests.tui.test_compare import row_of, tiny_session


def visible_text(table: DataTable, row: int) -> str:
    """What the terminal shows of a table row (the columns scrolled into view only)."""
    return table.render_line(table.header_height + row).text


def column(table: DataTable, key: str) -> list[str]:
    return [str(c) for c in table.get_column(key)]


async def test_the_mark_the_frozen_mse_and_saved_at_show_at_80x24(make_app, sessions_root):
    run = tiny_session(sessions_root, 0)
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_browser(pilot)
        assert table.ordered_columns[0].label.plain == "cmp"  # the mark column comes first
        infos = [(run.run_id, app.screen.sessions[0])]
        infos += [(f"models/{m.path.name}", m) for m in list_models() if not m.error]
        for name, _ in infos:
            table.move_cursor(row=row_of(table, name))
            await pilot.press("space")
        await pilot.pause()
        assert table.scroll_x == 0
        for name, info in infos:
            shown = visible_text(table, row_of(table, name))
            assert shown.lstrip().startswith(MARK), shown
            assert name in shown
            assert _mse(info.frozen_mse_test) in shown and _saved(info.saved_at) in shown, shown


@pytest.mark.slow
async def test_s_sorts_by_frozen_mse_and_f_cycles_the_methods(make_app, sessions_root):
    runs = [tiny_session(sessions_root, seed) for seed in (0, 1)]
    app = make_app(autostart=False)
    models = [m for m in list_models() if not m.error]
    async with app.run_test(size=(120, 40)) as pilot:
        table = await open_browser(pilot)
        by_date = column(table, "id")
        newest_first = sorted(runs, key=lambda r: r.run_id, reverse=True)
        assert by_date[:2] == [r.run_id for r in newest_first]
        assert "sorted by date" in str(app.screen.query_one("#browser-state").render())

        await pilot.press("s")
        mse = [float(v) for v in column(table, "mse") if v != "-"]
        assert len(mse) == 2 + len(models) and mse == sorted(mse)
        assert column(table, "id") != by_date  # the models (near 0.001) now lead
        assert "sorted by frozen MSE" in str(app.screen.query_one("#browser-state").render())
        await pilot.press("s")
        assert column(table, "id") == by_date

        await pilot.press("f")  # the methods in turn: clock (models/), handoff, then all
        assert set(column(table, "method")) == {"clock"} and table.row_count == len(models)
        await pilot.press("f")
        assert column(table, "method") == ["handoff", "handoff"]
        assert "method: handoff" in str(app.screen.query_one("#browser-state").render())
        await pilot.press("f")
        assert column(table, "id") == by_date


@pytest.mark.slow
async def test_d_asks_first_n_keeps_y_deletes(make_app, sessions_root):
    keep, gone = tiny_session(sessions_root, 0), tiny_session(sessions_root, 1)
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_browser(pilot)
        table.move_cursor(row=row_of(table, gone.run_id))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert gone.run_id in app.screen.question
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionBrowser), "the browser")
        assert (sessions_root / gone.run_id / "latest.pt").is_file()
        assert gone.run_id in column(table, "id")

        table.move_cursor(row=row_of(table, gone.run_id))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: not (sessions_root / gone.run_id).exists(), "the deletion")
        assert isinstance(app.screen, SessionBrowser)
        assert gone.run_id not in column(table, "id") and keep.run_id in column(table, "id")
        assert (sessions_root / keep.run_id / "latest.pt").is_file()


async def test_d_refuses_the_live_session_and_models(make_app, sessions_root):
    app = make_app(autostart=False)
    live = app.training
    live.save_snapshot("key")
    models = [m for m in list_models() if not m.error]
    async with app.run_test(size=(120, 40)) as pilot:
        table = await open_browser(pilot)
        for name in (live.run_id, f"models/{models[0].path.name}"):
            table.move_cursor(row=row_of(table, name))
            await pilot.press("d")
            await pilot.pause(0.1)
            assert isinstance(app.screen, SessionBrowser)  # no question: refused at once
        assert (sessions_root / live.run_id / "latest.pt").is_file()
        assert models[0].path.is_file()
        assert table.row_count == 1 + len(list_models())
