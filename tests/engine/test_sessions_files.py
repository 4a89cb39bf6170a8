"""Where sessions live, how they are named, and what a save refuses to write."""

from datetime import datetime
from pathlib import Path

import pytest
import torch

from engine import events as ev
from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from engine.store.files import read_file
from engine.store.sessions import list_sessions, new_run_id, resolve, sessions_dir

TINY = RunConfig(method="handoff", duration=0.05, backend="torch")


def test_sessions_dir_flag_beats_env_beats_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FREQTUI_SESSIONS", raising=False)
    assert sessions_dir() == tmp_path / "sessions"
    monkeypatch.setenv("FREQTUI_SESSIONS", str(tmp_path / "env"))
    assert sessions_dir() == tmp_path / "env"
    assert sessions_dir(tmp_path / "flag") == tmp_path / "flag"


def test_run_ids_are_readable_and_never_shared(tmp_path):
    now = datetime(2026, 11, 26, 7, 5, 9)
    first = new_run_id("handoff", tmp_path, now)
    second = new_run_id("handoff", tmp_path, now)  # same second, same method
    (tmp_path / "20261126-070509-handoff-3").mkdir()  # as if another process took it
    third = new_run_id("handoff", tmp_path, now)
    assert (first, second, third) == (
        "20261126-070509-handoff",
        "20261126-070509-handoff-2",
        "20261126-070509-handoff-4",
    )
    assert (tmp_path / first).is_dir()  # claimed at once, before any save
    assert list_sessions(tmp_path) == []  # a folder without a snapshot is no session


def test_two_runs_started_together_save_apart(tmp_path):
    a = TrainingRun(TINY, sessions_root=tmp_path, state_check=False)
    b = TrainingRun(TINY, sessions_root=tmp_path, state_check=False)
    assert a.run_id != b.run_id
    assert a.save_snapshot().parent != b.save_snapshot().parent
    assert len(list_sessions(tmp_path)) == 2


def test_nan_weights_are_not_saved_over_a_good_snapshot(tmp_path):
    run = TrainingRun(TINY, sessions_root=tmp_path, state_check=False)
    run.trainer.train_rows(5)
    path = run.save_snapshot()
    good = path.read_bytes()
    with torch.no_grad():
        run.model.fc.bias.fill_(float("nan"))
    with pytest.raises(FreqtuiError, match="NaN"):
        run.save_snapshot()
    assert path.read_bytes() == good
    assert not (path.parent / "previous.pt").exists()
    # the worker's own saves warn instead of failing the run, once per outage
    run._save_quietly("autosave")  # noqa: SLF001
    run._save_quietly("autosave")  # noqa: SLF001
    (warning,) = [e for e in run.drain() if isinstance(e, ev.SaveFailed)]
    assert "not saved (autosave)" in warning.message and "NaN" in run.save_error


def test_a_flipped_bit_in_a_weight_is_caught(tmp_path):
    run = TrainingRun(TINY, sessions_root=tmp_path, state_check=False)
    path = run.save_snapshot()
    obj = torch.load(path, weights_only=True)
    w = obj["model"]["lstm.weight_hh_l0"]
    w.view(torch.int32)[3, 7] ^= 1  # the lowest mantissa bit of one weight
    torch.save(obj, path)  # still a well-formed torch file with the old checksum
    with pytest.raises(FreqtuiError, match="corrupted"):
        read_file(path)


def test_resolve_takes_a_file_a_folder_an_id_or_a_unique_prefix(tmp_path):
    run = TrainingRun(TINY, sessions_root=tmp_path, state_check=False)
    path = run.save_snapshot()
    assert resolve(path, tmp_path) == path
    assert resolve(path.parent, tmp_path) == path
    assert resolve(run.run_id, tmp_path) == path
    assert resolve(run.run_id[:10], tmp_path) == path
    other = TrainingRun(TINY, sessions_root=tmp_path, state_check=False)
    other.save_snapshot()
    with pytest.raises(FreqtuiError, match="several sessions"):
        resolve(run.run_id[:8], tmp_path)  # both runs share the date
    with pytest.raises(FreqtuiError, match="no such file or session"):
        resolve("nothing-like-it", tmp_path)
    assert resolve(Path(run.run_id), tmp_path) == path
