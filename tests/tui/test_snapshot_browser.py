"""The session browser and the comparison as a user sees them, on the committed models/
only (fixed numbers and dates; no live run behind: a bare host app), at 80×24 and 120×40:
the mark column first with the frozen MSE and saved-at columns on screen; the comparison
of the four models in two data sets, the best marked within each, every frequency's
column at 120×40, the lines told apart by marker, the rows ticks as 100M."""

from __future__ import annotations

from textual.app import App

from engine.store.compare import list_models
from freqtui.screens.sessions import SessionBrowser
from tests.tui.conftest import wait_for

ALL_MARKED = ["space"] * 4


class BrowserHost(App):
    """Only the browser, over the repository's models/ ("sessions" is a name only)."""

    def on_mount(self) -> None:
        self.push_screen(SessionBrowser([], "sessions", "", models=list_models()))


def test_browser_marked_80x24(snap_compare):
    assert snap_compare(BrowserHost(), press=ALL_MARKED, terminal_size=(80, 24))


def test_browser_sorted_by_frozen_mse_120x40(snap_compare):
    assert snap_compare(BrowserHost(), press=["s"], terminal_size=(120, 40))


async def compare_all(pilot) -> None:
    """Mark the four, press c, and wait for their files (read in a worker thread)."""
    await pilot.press(*ALL_MARKED, "c")
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "loaded", False), "the comparison")


def test_compare_models_120x40(snap_compare):
    assert snap_compare(BrowserHost(), run_before=compare_all, terminal_size=(120, 40))


def test_compare_models_80x24(snap_compare):
    assert snap_compare(BrowserHost(), run_before=compare_all, terminal_size=(80, 24))
