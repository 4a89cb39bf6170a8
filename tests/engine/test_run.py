"""TrainingRun's controller: pause parks the worker, an evaluation still runs while paused."""

import time

from engine import events as ev
from engine.config import RunConfig
from engine.run import TrainingRun


def wait_for(run, kind, seen, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in run.drain():
            seen.append(e)
        hits = [e for e in seen if isinstance(e, kind)]
        if hits:
            return hits[-1]
        time.sleep(0.02)
    raise AssertionError(f"no {kind.__name__} within {timeout} s")


def test_evaluate_while_paused_runs_at_once_and_trains_nothing(tmp_path):
    config = RunConfig(method="handoff", backend="torch", duration=1.0, epochs=100)
    run = TrainingRun(config, state_check=False, sessions_root=tmp_path)
    seen: list = []
    run.start()
    try:
        wait_for(run, ev.StepStats, seen)
        run.pause()
        paused = wait_for(run, ev.Paused, seen)
        rows = run.history.rows_total
        run.request_eval()
        done = wait_for(run, ev.EvalDone, seen)
        assert done.rows_total == rows == run.history.rows_total
        assert run.paused and run.status == "paused"
        assert paused.row == run.trainer.row
        run.unpause()
        wait_for(run, ev.Resumed, seen)
        deadline = time.monotonic() + 30
        while run.history.rows_total == rows and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.history.rows_total > rows
    finally:
        run.stop()
    assert not run.alive
