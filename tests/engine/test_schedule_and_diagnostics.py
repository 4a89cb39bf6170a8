"""The schedule channel (Trainer.schedule → StepStats.schedule, ScheduleChanged), the
per-block epoch means kept in the history, and the oscillator diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from engine import events as ev
from engine.config import RunConfig
from engine.evaluation import oscillator_diagnostics
from engine.history import History
from engine.run import TrainingRun
from engine.signals import test_set


def _run_to_end(run: TrainingRun) -> list[ev.Event]:
    run.start()
    run.join(120)
    assert not run.alive
    return run.drain()


def test_the_clock_reports_its_schedule_and_each_change(tmp_path):
    cfg = RunConfig(
        method="clock",
        duration=0.1,
        epochs=1,
        # short windows (0.06 periods) that slide and grow at every step
        options={"epoch_sets": 40, "t0": 20, "k0": 0.06, "min_steps": 1, "thr": 10.0},
    )
    run = TrainingRun(cfg.validated(), sessions_root=tmp_path, state_check=False)
    events = _run_to_end(run)
    changes = [e for e in events if isinstance(e, ev.ScheduleChanged)]
    stats = [e for e in events if isinstance(e, ev.StepStats)]
    assert stats and all(s.blocks_together for s in stats)
    labels = [k for k, _ in stats[-1].schedule]
    assert labels[:4] == ["phase", "horizon", "S amplitude", "lr"]
    # while the slow block's target slides down, the status says where it is
    assert any(dict(s.schedule).get("slide", "").startswith("1 Hz block at ") for s in stats)
    # the polish was reached (thr 10 passes every step): its validation MSE is shown
    assert ("validation MSE" in labels) == (run.trainer.val_last is not None)
    horizons = [dict(c.items)["horizon"] for c in changes]
    assert len(changes) >= 2 and horizons[0] != horizons[-1]  # the horizon grew: events
    assert dict(stats[-1].schedule)["horizon"] == horizons[-1]
    lr = run.trainer.optimizer.param_groups[0]["lr"]
    assert dict(run.view().schedule)["lr"] == f"{lr:.2e}"  # read from the optimizer


def test_the_clock_shows_a_validation_mse_only_when_it_keeps_one(tmp_path):
    cfg = RunConfig(method="clock", duration=0.1, epochs=1).validated()
    tr = TrainingRun(cfg, sessions_root=tmp_path, state_check=False).trainer
    assert "validation MSE" not in dict(tr.schedule())
    tr.val_last = 0.0123
    assert dict(tr.schedule())["validation MSE"] == "0.0123"


def test_the_hand_off_has_no_schedule_and_its_epoch_means_are_kept(tmp_path):
    cfg = RunConfig(method="handoff", backend="torch", duration=0.05, epochs=2).validated()
    run = TrainingRun(cfg, sessions_root=tmp_path, state_check=False)
    events = _run_to_end(run)
    assert not any(isinstance(e, ev.ScheduleChanged) for e in events)
    epochs = [e for e in events if isinstance(e, ev.EpochDone)]
    assert [e.epoch for e in epochs] == [1, 2]
    for e in epochs:
        assert len(e.online_loss_by_block) == 4
        # blocks have equal rows in an epoch: the overall mean is the mean of the blocks'
        assert e.online_loss == pytest.approx(np.mean(e.online_loss_by_block), rel=1e-9)
    back = History.from_dict(run.history.to_dict())
    assert back.epochs == run.history.epochs
    assert [(n, m, b) for n, m, b in back.epochs] == [
        (e.epoch, e.online_loss, e.online_loss_by_block) for e in epochs
    ]
    finished = [e for e in events if isinstance(e, ev.Finished)][-1]
    assert (finished.epoch, finished.row) == (2, run.rows_per_epoch)


def test_diagnostics_read_a_known_phase_and_amplitude():
    test = test_set(RunConfig())
    phase, amp = 0.3, 0.8
    outputs = np.stack([amp * np.sin(2 * np.pi * f * test.t + phase) for f in test.frequencies])
    d = oscillator_diagnostics(outputs, test)
    # windows are whole periods to within half a sample (3 Hz: 333.3 samples a period), so
    # the sin/cos cross terms leak at most ~0.5/w ≤ 0.25% of the amplitude (w ≥ 200):
    # 0.15° and 0.002 at most; measured 0.06° and 0.001
    assert np.abs(d.phase_error_deg - np.degrees(phase)).max() < 0.5
    assert np.abs(d.amplitude_error - (amp - 1)).max() < 0.01
    true_mse = ((outputs - test.targets) ** 2).mean(axis=1)
    assert np.abs(d.squared_error.mean(axis=1) - true_mse).max() < 0.01 * true_mse.max()
    zero = oscillator_diagnostics(np.zeros_like(outputs), test)
    assert np.allclose(zero.amplitude_error, -1.0)
    assert np.abs(zero.squared_error - 0.5).max() < 0.01  # mean of sin² over whole periods
