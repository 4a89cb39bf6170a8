"""The console's UI thread does no torch or numpy work of the engine's: the plots' test set
and oscillator diagnostics, a resumed run's frozen pass and the comparison's file reads
all run in worker threads, driven here by the keys a user presses. Each engine function
is wrapped to record the thread that calls it; none may be the main (UI) thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from textual.app import App
from textual.widgets import Label

import engine.run
import engine.store.compare
from engine.run import TrainingRun
from engine.store.compare import list_models
from freqtui.app import FreqtuiApp
from freqtui.screens.compare import LOADING, CompareScreen
from freqtui.screens.sessions import SessionBrowser
from freqtui.widgets.oscillator_view import OscillatorView
from freqtui.widgets.plots_panel import PlotsPanel
from tests.tui.conftest import short_config, wait_for


class Calls:
    """The threads that called the wrapped engine functions, by function name."""

    def __init__(self) -> None:
        self.threads: dict[str, list[threading.Thread]] = {}
        self.gate = threading.Event()  # wrapped with `gated`: held until set
        self.gate.set()

    def wrap(self, monkeypatch, module, name: str, gated: bool = False) -> None:
        original: Callable = getattr(module, name)

        def recorded(*args, **kw):
            self.threads.setdefault(name, []).append(threading.current_thread())
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
