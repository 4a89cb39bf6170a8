"""Resuming from the command line: a flag that would change the science of a saved run is
refused, naming the flag; --epochs may grow."""

import pytest

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from freqtui.commands.train import resumed_run


def _ns(**kw):
    return kw  # the flags given, as the CLI hands them on


def test_a_resume_refuses_changes_that_would_change_the_science(tmp_path):
    run = TrainingRun(
        RunConfig(method="handoff", backend="torch", duration=0.05, epochs=2).validated(),
        sessions_root=tmp_path,
        state_check=False,
    )
    run.save_snapshot()
    with pytest.raises(FreqtuiError, match="--lr cannot change"):
        resumed_run(run.run_id, _ns(lr=0.5, epochs=None), root=tmp_path)
    with pytest.raises(FreqtuiError, match="--hidden cannot change"):
        resumed_run(run.run_id, _ns(hidden_size=32), root=tmp_path)
    # the same value as saved is no change; epochs may grow
    same = resumed_run(run.run_id, _ns(lr=config_lr(run), epochs=5), root=tmp_path)
    assert same.config.epochs == 5


def config_lr(run: TrainingRun) -> float:
    return run.config.lr
