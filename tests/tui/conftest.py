"""The console under test: a real TrainingRun on a short signal (duration 1 s, 4,000 rows
an epoch, torch backend), sessions written under a temporary folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from engine.config import RunConfig
from engine.run import TrainingRun
from freqtui.app import FreqtuiApp

WAIT_S = 20.0  # generous: the machine is shared and may be loaded


def short_config(**changes) -> RunConfig:
    # many epochs: a test never sees the run end on its own
    return RunConfig(method="handoff", duration=1.0, backend="torch", epochs=50).replace(**changes)


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
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what}")
        await pilot.pause(0.05)


def trainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "freqtui-trainer" and t.is_alive()]
