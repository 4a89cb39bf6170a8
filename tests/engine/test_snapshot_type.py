"""The typed Snapshot: one builder from a file's content, one way back, every field
checked once; files written before a field existed still read and resume."""

import math
from pathlib import Path

import pytest
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from engine.store.files import checksum, read, sealed_bytes
from engine.store.sessions import LATEST, PREVIOUS, list_sessions, write_snapshot
from engine.store.snapshot import Snapshot

TINY = RunConfig(method="handoff", duration=0.05, backend="torch")
MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture
def run(tmp_path) -> TrainingRun:
    run = TrainingRun(TINY, sessions_root=tmp_path, run_id="s", state_check=False)
    run.trainer.train_rows(30)
    run.history.rows_total = 30
    run.history.add_online(30, 0, 0.5, (0.5, None, None, None))
    return run


def content(snap: Snapshot) -> str:
    """What a file of `snap` would hold, as its checksum (tensors by their bytes)."""
    return checksum(snap.to_dict())


def test_a_capture_goes_to_a_dict_and_back_unchanged(run, tmp_path):
    snap = run.snapshot()
    back = Snapshot.from_dict(snap.to_dict(), "capture")
    assert content(back) == content(snap)
    assert back.run_id == "s" and back.method == "handoff" and back.config == TINY.validated()
    assert (back.epochs_done, back.row, back.rows_done) == (0, 30, 30)
    assert back.weights and back.weights_note == run.trainer.weights_note()
    assert back.history.to_dict() == run.history.to_dict()
    # and through a file on disk: what `read` returns is what was written
    path = write_snapshot(tmp_path / "s", snap)
    assert content(read(path)) == content(snap)
    assert read(path).checksum == torch.load(path, weights_only=True)["checksum"]


def test_a_weights_file_goes_to_a_dict_and_back(run, tmp_path):
    run.save_weights(tmp_path / "w.pt")
    snap = read(tmp_path / "w.pt")
    assert not snap.resumable and snap.trainer is None and snap.weights_note == "final"
    assert snap.history.rows_total == 30
    assert content(Snapshot.from_dict(snap.to_dict())) == content(snap)


def hostile(raw: dict, field: str) -> dict:
    raw = {**raw, "trainer": dict(raw["trainer"])}
    if field == "trainer.epoch":
        raw["trainer"]["epoch"] = "two"
    elif field == "trainer.method":
        raw["trainer"]["method"] = "clock"
    elif field == "rows_per_epoch":
        raw["rows_per_epoch"] = -3
    elif field == "config":
        raw["config"] = {**raw["config"], "hidden_size": "big"}
    elif field == "run_id":
        raw["run_id"] = 7
    elif field == "history":
        raw["history"] = {"evals": [{"epoch": 1}]}
    elif field == "model":
        raw["model"] = {**raw["model"], "fc.weight": torch.zeros(3, 3)}
    elif field == "version":
        raw["version"] = 2
    return raw


@pytest.mark.parametrize(
    "field, words",
    [
        ("trainer.epoch", "trainer has no valid epoch"),
        ("trainer.method", "trainer state is for 'clock'"),
        ("rows_per_epoch", "rows_per_epoch is -3"),
        ("config", "its config is invalid"),
        ("run_id", "no valid run_id"),
        ("history", "history is unreadable"),
        ("model", "incompatible weights: fc.weight"),
        ("version", "format version 2 is newer"),
    ],
)
def test_a_bad_field_is_one_clear_line(run, field, words):
    raw = run.capture()
    with pytest.raises(FreqtuiError) as info:
        Snapshot.from_dict(hostile(raw, field), "sessions/s/latest.pt")
    message = str(info.value)
    assert "\n" not in message and message.startswith("sessions/s/latest.pt: ")
    assert words in message, message


def older(raw: dict) -> dict:
    """A snapshot as freqtui wrote it before the weights note, rows per epoch, the planned
    length and the per-block and schedule histories were kept."""
    raw = {k: v for k, v in raw.items() if k not in ("rows_per_epoch", "weights")}
    raw["trainer"] = {k: v for k, v in raw["trainer"].items() if k != "planned_epochs"}
    h = raw["history"]
    raw["history"] = {k: v for k, v in h.items() if k not in ("online_by_block", "schedule")}
    return raw


def test_an_older_snapshot_still_reads_lists_and_resumes(run, tmp_path):
    raw = older(run.capture())
    snap = Snapshot.from_dict(raw)
    assert snap.rows_per_epoch == TINY.rows_per_set
    assert snap.planned_epochs == TINY.epochs
    assert snap.weights_note == "not recorded (an older snapshot)"
    folder = tmp_path / "old"
    folder.mkdir()
    from engine.store.files import atomic_torch_save, sealed

    atomic_torch_save(sealed(raw), folder / LATEST)
    [info] = [i for i in list_sessions(tmp_path) if i.id == "s" and i.path.parent == folder]
    assert info.error is None and (info.epoch, info.row) == (1, 30)
    resumed = TrainingRun.resume(folder / LATEST, root=tmp_path)
    assert (resumed.trainer.epoch, resumed.trainer.row) == (0, 30)
    assert resumed.history.rows_total == 30


@pytest.mark.parametrize("name", sorted(p.name for p in MODELS.glob("*.pt")))
def test_the_committed_models_read_as_snapshots(name):
    snap = read(MODELS / name)
    assert snap.resumable and snap.method == "clock" and snap.finished
    assert snap.last_eval is not None and math.isfinite(snap.last_eval.test.overall)
    assert snap.weights_note


def test_nan_weights_are_refused_before_anything_is_written(run, tmp_path):
    first = run.save_snapshot()
    second = run.save_snapshot()
    assert read(first.parent / PREVIOUS).saved_at and second == first  # rotated
    before = first.read_bytes(), (first.parent / PREVIOUS).read_bytes()
    with torch.no_grad():
        run.model.fc.weight[0, 0] = float("nan")
    snap = run.snapshot()
    for save in (lambda: run.save_snapshot(), lambda: sealed_bytes(snap)):
        with pytest.raises(FreqtuiError, match=r"NaN or infinite values \(fc\.weight\): not saved"):
            save()
    assert (first.read_bytes(), (first.parent / PREVIOUS).read_bytes()) == before
