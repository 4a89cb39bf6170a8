"""The console under test: a real TrainingRun on a short signal (duration 1 s, 4,000 rows
an epoch, torch backend), sessions written under a temporary folder."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable

import pytest
from textual.widgets import DataTable

from engine import events as ev
from engine.config import RunConfig
from engine.run import TrainingRun
from freqtui.app import FreqtuiApp
from freqtui.screens.sessions import SessionBrowser

WAIT_S = 20.0  # generous: the machine is shared and may be loaded
# Pilot's press waits, twice a key, for the process to go idle (CPU time not advancing),
# up to 1 s each (textual._wait.wait_for_idle). A console whose run trains in its worker
# thread is never idle, so every key took 2 s of waiting for nothing. Keys are still
# sent as Pilot sends them, and each press still waits until every widget has handled
# what was queued (Pilot's _wait_for_screen); a test then waits for what it checks
# (`wait_for`), as it did.
IDLE_WAIT_MAX_S = 0.1


def short_config(**changes) -> RunConfig:
    # many epochs: a test never sees the run end on its own
    return RunConfig(method="handoff", duration=1.0, backend="torch", epochs=50).replace(**changes)


@pytest.fixture(autouse=True)
def _short_idle_waits(monkeypatch):
    import textual.app
    import textual.pilot

    for module in (textual.app, textual.pilot):
        wait = functools.partial(module.wait_for_idle, max_sleep=IDLE_WAIT_MAX_S)
        monkeypatch.setattr(module, "wait_for_idle", wait)


@pytest.fixture
def sessions_root(tmp_path):
    return tmp_path / "sessions"


@pytest.fixture
def make_app(sessions_root):
    """Build apps over fresh runs; every run is stopped at teardown whatever happened."""
    runs: list[TrainingRun] = []

    def make(*, autostart: bool = True, state_check: bool = False, **changes) -> FreqtuiApp:
        run = TrainingRun(
            short_config(**changes), state_check=state_check, sessions_root=sessions_root
        )
        runs.append(run)
        return FreqtuiApp(run=run, autostart=autostart)

    yield make
    for run in runs:
        run.stop(timeout=5)


@pytest.fixture
def app(make_app) -> FreqtuiApp:
    return make_app()


async def wait_for(pilot, condition: Callable[[], bool], what: str, timeout: float = WAIT_S):
    """Let the app run until `condition()` holds; fail naming `what` after `timeout`."""
    await _poll(condition, what, timeout, lambda: pilot.pause(0.05))


async def wait_while_busy(condition: Callable[[], bool], what: str, timeout: float = WAIT_S):
    """`wait_for` for while the app is inside a handler that awaits (q's stop and save):
    Pilot's pause waits for the app to take its next message, which it cannot until that
    handler returns, so poll with the event loop's sleep instead."""
    await _poll(condition, what, timeout, lambda: asyncio.sleep(0.05))


async def _poll(condition: Callable[[], bool], what: str, timeout: float, pause) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")
        await pause()


async def open_browser(pilot, timeout: float = WAIT_S) -> DataTable:
    """Press `o` and wait until the session browser has its rows (listed in its worker
    thread); returns its table."""
    await pilot.press("o")

    def listed() -> bool:
        screen = pilot.app.screen
        return isinstance(screen, SessionBrowser) and screen.loaded

    await wait_for(pilot, listed, "the session browser's listing", timeout)
    await pilot.pause()
    return pilot.app.screen.query_one(DataTable)


def trainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "freqtui-trainer" and t.is_alive()]


def step_stats(
    config: RunConfig, *, row: int, loss: float, by_block: tuple[float | None, ...], **kw
) -> ev.StepStats:
    """A StepStats with fixed, machine-independent gauges, as a live run would send it."""
    rows = config.rows_per_set
    block = min(row // config.n_samples, config.n_blocks - 1)
    fields = dict(
        epoch=1,
        epochs=config.epochs,
        row=row,
        rows_per_epoch=rows,
        block=block,
        rows_total=row,
        rows_per_s=500.0,
        elapsed_s=row / 500,
        eta_s=(rows - row) / 500,
        online_loss=loss,
        online_loss_by_block=by_block,
        rss_mb=512.0,
        rss_slope_mb_per_10k=0.5,
        leak_warning=False,
        h_norm=2.0,
        c_norm=4.0,
        saturated=0.125,
        gate_i=0.5,
        gate_f=0.625,
        gate_o=0.375,
    )
    fields.update(kw)
    return ev.StepStats(**fields)
