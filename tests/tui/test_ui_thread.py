"""The console's UI thread does no torch or numpy work of the engine's: the plots' test set
and oscillator diagnostics, a resumed run's frozen pass, the comparison's file reads, the
session browser's listing, the hand-over to a chosen session and q's stop and save all
run in other threads, driven here by the keys a user presses. Each engine function is
wrapped to record the thread that calls it; none may be the main (UI) thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from textual import events
from textual.app import App
from textual.widgets import DataTable, Label

import engine.run
import engine.store.compare
import engine.store.sessions
import freqtui.app
from engine.run import TrainingRun
from engine.store.compare import list_models
from freqtui.app import FreqtuiApp
from freqtui.screens import sessions as browser_module
from freqtui.screens.compare import LOADING, CompareScreen
from freqtui.screens.sessions import SessionBrowser
from freqtui.widgets.event_log import EventLog
from freqtui.widgets.oscillator_view import OscillatorView
from freqtui.widgets.plots_panel import PlotsPanel
from tests.tui.conftest import (
    open_browser,
    short_config,
    trainer_threads,
    wait_for,
    wait_while_busy,
)


class Calls:
    """The threads that called the wrapped engine functions, by function name."""

    def __init__(self) -> None:
        self.threads: dict[str, list[threading.Thread]] = {}
        self.args: dict[str, list[tuple]] = {}  # the arguments of each call, in order
        self.gate = threading.Event()  # wrapped with `gated`: held until set
        self.gate.set()

    def wrap(self, monkeypatch, module, name: str, gated: bool = False) -> None:
        original: Callable = getattr(module, name)

        def recorded(*args, **kw):
            self.threads.setdefault(name, []).append(threading.current_thread())
            self.args.setdefault(name, []).append(args)
            if gated:
                self.gate.wait(30)
            return original(*args, **kw)

        monkeypatch.setattr(module, name, recorded)

    def on_ui_thread(self) -> list[str]:
        main = threading.main_thread()
        return [name for name, ts in self.threads.items() if any(t is main for t in ts)]


@pytest.fixture
def calls(monkeypatch) -> Calls:
    c = Calls()
    for name in ("test_set", "oscillator_diagnostics", "predict"):
        c.wrap(monkeypatch, engine.run, name)
    return c


@pytest.mark.slow
async def test_e_draws_the_diagnostics_computed_off_the_ui_thread(make_app, calls):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        plots = app.query_one(PlotsPanel)
        await wait_for(pilot, lambda: app.training.history.rows_total > 0, "the first rows")
        await pilot.press("e")  # a frozen evaluation; its outputs come to the plots
        await wait_for(pilot, lambda: plots.diagnostics is not None, "the diagnostics")
        await pilot.press("p")  # the oscillator tab draws them
        await pilot.pause()
        assert plots.query_one("#plot-tabs").active == "tab-osc"
        assert plots.query_one(OscillatorView).redraws >= 2  # at mount, then the evaluation
        assert calls.threads.get("oscillator_diagnostics"), "the diagnostics were not computed"
        assert calls.threads.get("test_set")
        assert calls.on_ui_thread() == [], calls.threads
        await pilot.press("q")


async def test_a_resumed_run_evaluates_its_saved_weights_off_the_ui_thread(sessions_root, calls):
    run = TrainingRun(short_config(epochs=1), state_check=False, sessions_root=sessions_root)
    run.history.rows_total = 10  # trained: its saved weights are worth drawing
    path = run.save_snapshot("end")
    app = FreqtuiApp(run=TrainingRun.resume(path, root=sessions_root), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        plots = app.query_one(PlotsPanel)
        await wait_for(pilot, lambda: plots.outputs is not None, "the saved weights' plots", 60)
        await pilot.press("p")
        await pilot.pause()
        assert plots.eval_label.startswith("saved weights")
        # the frozen pass (torch) and its diagnostics, each in a worker thread
        assert calls.threads.get("predict") and calls.threads.get("oscillator_diagnostics")
        assert calls.on_ui_thread() == [], calls.threads
        await pilot.press("q")


class BrowserHost(App):
    """The session browser alone, over the repository's models/."""

    def on_mount(self) -> None:
        self.push_screen(SessionBrowser([], "sessions", "", models=list_models()))


async def test_c_reads_the_compared_files_off_the_ui_thread_saying_loading(monkeypatch):
    calls = Calls()
    calls.wrap(monkeypatch, engine.store.compare, "read", gated=True)
    models = [m for m in list_models() if not m.error]
    assert len(models) >= 2
    app = BrowserHost()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SessionBrowser), "the browser")
        calls.threads.clear()  # (the browser's listing, and this test's own, read them)
        calls.gate.clear()  # every read from here on waits until the test lets it go
        await pilot.press(*["space"] * len(models), "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the comparison")
        screen = app.screen
        # the reads are held: the screen is up and says so, and the keys still answer
        assert str(screen.query_one("#compare-ranking", Label).render()) == LOADING
        assert not screen.loaded
        await pilot.press("t")
        assert screen.show_set == "train"
        calls.gate.set()
        await wait_for(pilot, lambda: screen.loaded, "the files read")
        assert len(screen.histories) == len(models)
        assert LOADING not in str(screen.query_one("#compare-ranking", Label).render())
        assert len(calls.threads["read"]) == len(models)
        assert calls.on_ui_thread() == [], calls.threads


# ---- the session browser, the hand-over and q ---------------------------------------------
def browser_state(screen: SessionBrowser) -> str:
    return str(screen.query_one("#browser-state", Label).render())


def saves(calls: Calls) -> list[str]:
    """The reasons of the wrapped TrainingRun.save_snapshot calls, in order."""
    return [args[1] for args in calls.args.get("save_snapshot", [])]


async def test_o_opens_the_browser_at_once_and_lists_the_sessions_off_the_ui_thread(
    make_app, sessions_root, monkeypatch
):
    app = make_app(autostart=False)
    app.training.history.rows_total = 10
    app.training.save_snapshot("key")  # one session to list (its sidecar is read)
    models = list_models()
    calls = Calls()
    # where the console looks them up, and what they read
    calls.wrap(monkeypatch, freqtui.app, "list_sessions", gated=True)
    calls.wrap(monkeypatch, freqtui.app, "list_models")
    calls.wrap(monkeypatch, engine.store.sessions, "read_sidecar")
    calls.wrap(monkeypatch, engine.store.sessions, "read")
    calls.wrap(monkeypatch, engine.store.compare, "read")
    calls.gate.clear()  # the listing waits until the test lets it go
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionBrowser), "the browser")
        screen = app.screen
        await wait_for(pilot, lambda: "list_sessions" in calls.threads, "the listing to start")
        assert calls.on_ui_thread() == [], calls.threads
        assert not screen.loaded
        assert browser_state(screen).startswith(browser_module.LOADING)
        assert screen.query_one(DataTable).row_count == 0
        # every key of the browser on its empty, loading table: nothing breaks
        await pilot.press("enter", "space", "c", "d", "s", "f", "s")
        await pilot.pause(0.2)
        assert app.screen is screen and not screen.loaded and app.is_running
        calls.gate.set()
        await wait_for(pilot, lambda: screen.loaded, "the listing")
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert table.row_count == 1 + len(models)
        assert str(table.get_cell_at((0, 1))).startswith(app.training.run_id)
        assert browser_state(screen).startswith("sorted by date")
        assert calls.threads.get("read_sidecar") and calls.threads.get("read")
        assert calls.threads.get("list_models")
        assert calls.on_ui_thread() == [], calls.threads
        await pilot.press("escape")
        await pilot.press("q")


@pytest.mark.slow  # a long console story: train, save, browse, hand over, train again
async def test_resuming_a_session_reads_it_and_saves_this_run_off_the_ui_thread(
    make_app, sessions_root, monkeypatch
):
    app = make_app()
    first = app.training
    calls = Calls()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: first.history.rows_total > 0, "the first rows")
        await pilot.press("s")  # the session to resume (saved from a worker thread)
        await wait_for(pilot, lambda: (sessions_root / first.run_id).is_dir(), "the snapshot")
        table = await open_browser(pilot)
        assert str(table.get_cell_at((0, 1))).startswith(first.run_id)
        info = next(s for s in app.screen.sessions if s.id == first.run_id)
        rows = first.history.rows_total
        await wait_for(pilot, lambda: first.history.rows_total > rows, "rows not saved yet")
        calls.wrap(monkeypatch, TrainingRun, "hand_over", gated=True)
        calls.wrap(monkeypatch, TrainingRun, "save_snapshot")
        calls.wrap(monkeypatch, engine.store.sessions, "read_snapshot")
        calls.gate.clear()
        # Enter: the hand-over starts in a thread and is held there
        enter = asyncio.create_task(pilot.press("enter"))
        await wait_for(pilot, lambda: "hand_over" in calls.threads, "the hand-over", 30)
        assert calls.on_ui_thread() == [], calls.threads
        assert app._swapping
        # a second hand-over or a quit started meanwhile does nothing
        app.action_open_sessions()
        assert not isinstance(app.screen, SessionBrowser)
        await app._resume_session(info)
        await app.action_quit()
        assert not app.quitting and app.is_running
        calls.gate.set()
        await enter
        await wait_for(pilot, lambda: app.training is not first, "the resumed run")
        resumed = app.training
        assert resumed.run_id == first.run_id and not first.alive
        assert len(calls.threads["hand_over"]) == 1
        assert saves(calls) == ["switch"]  # the old run's rows since the key's save
        log = app.query_one(EventLog).messages  # the new run's log
        assert any(m.startswith(f"resumed session {first.run_id}") for m in log), log
        assert calls.threads.get("read_snapshot")
        assert calls.on_ui_thread() == [], calls.threads
        await wait_for(pilot, lambda: resumed.history.rows_total > 0, "the resumed run trains")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert trainer_threads() == []


async def test_q_stops_and_saves_off_the_ui_thread_and_a_second_q_or_ctrl_c_changes_nothing(
    app, sessions_root, monkeypatch
):
    run = app.training
    calls = Calls()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        calls.wrap(monkeypatch, TrainingRun, "save_snapshot", gated=True)
        calls.gate.clear()
        quit_ = asyncio.create_task(pilot.press("q"))
        await wait_while_busy(lambda: "save_snapshot" in calls.threads, "the final save", 30)
        assert app.quitting
        # q again and Ctrl-C while the save is held: queued or ignored, never a second save
        app.post_message(events.Key("q", "q"))
        app.post_message(events.Key("ctrl+c", None))
        await app.action_quit()
        await app.action_help_quit()
        calls.gate.set()
        await quit_
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert calls.on_ui_thread() == [], calls.threads
    assert saves(calls) == ["quit"]
    assert app.return_value == 0  # Ctrl-C after q did not turn it into 130
    assert (sessions_root / run.run_id / "latest.pt").is_file()
    assert trainer_threads() == []
