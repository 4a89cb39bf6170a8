"""Sessions from the command line: headless runs save them, `sessions` lists them,
`train --headless --resume` continues them, `eval` and `report` read them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.signals import test_set, train_set
from engine.store.files import load_model, read_file
from engine.store.sessions import list_sessions
from freqtui.cli import main
from tests.float_bounds import frozen_mse_gap_bound

REPO = Path(__file__).resolve().parents[2]
TINY = ["--method", "handoff", "--duration", "0.05", "--backend", "torch"]  # 200 rows an epoch


def cli(capfd, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.fixture
def session(tmp_path, capfd):
    """A finished one-epoch headless run in tmp_path/s; returns (root, run id)."""
    root = tmp_path / "s"
    rc, out, err = cli(capfd, "train", "--headless", *TINY, "--sessions", root, "--autosave", 64)
    assert rc == 0, err
    (info,) = list_sessions(root)
    assert f"session {info.id}: snapshots in {root / info.id}" in out
    assert out.count("snapshot saved (autosave)") >= 2 and "snapshot saved (end)" in out
    return root, info.id


def test_headless_run_saves_a_session_that_lists(session, capfd):
    root, run_id = session
    assert run_id.endswith("-handoff")
    rc, out, err = cli(capfd, "sessions", "--sessions", root)
    assert rc == 0 and err == ""
    head, row = out.splitlines()
    assert "frozen MSE train" in head
    assert row.split()[:4] == [run_id, "handoff", "1/1", "200/200"]
    rc, out, _ = cli(capfd, "sessions", "--sessions", root, "--json")
    (item,) = json.loads(out)
    saved = read_file(Path(item["path"]))
    assert item["frozen_mse_test"] == saved["history"]["evals"][-1]["test"]["overall"]
    assert item["finished"] is True


def test_resume_by_id_trains_further_and_refuses_other_changes(session, capfd):
    root, run_id = session
    rc, out, err = cli(capfd, "train", "--headless", "--resume", run_id, "--sessions", root)
    assert rc == 2 and "pass --epochs 2" in err and len(err.strip().splitlines()) == 1
    rc, out, err = cli(
        capfd, "train", "--headless", "--resume", run_id, "--sessions", root, "--lr", "0.5"
    )
    assert rc == 2 and "--lr cannot change" in err
    prefix = run_id[:15]  # a unique prefix of the id is enough
    rc, out, err = cli(
        capfd, "train", "--headless", "--resume", prefix, "--sessions", root, "--epochs", "2"
    )
    assert rc == 0, err
    assert f"resuming session {run_id} at epoch 2, row 0" in out
    assert "400 rows trained in all" in out  # rows counted over both sessions
    (info,) = list_sessions(root)  # the same session, not a new one
    assert info.id == run_id and (info.epoch, info.epochs, info.finished) == (2, 2, True)
    assert read_file(root / run_id / "latest.pt")["history"]["rows_total"] == 400


@pytest.mark.slow
def test_the_environment_variable_moves_the_sessions_folder(tmp_path):
    where = tmp_path / "elsewhere"
    env = {**os.environ, "FREQTUI_SESSIONS": str(where), "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "freqtui.cli", "train", "--headless", *TINY, "--autosave", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (info,) = list_sessions(where)
    assert info.path == where / info.id / "latest.pt"
    assert not (tmp_path / "sessions").exists()  # nothing in the default place


def colours(img: np.ndarray) -> int:
    """How many distinct colours an image read by matplotlib holds. Its 8-bit channels are
    packed into one integer per pixel: np.unique(..., axis=0) on the rows sorts them as
    records and took seconds an image."""
    px = np.rint(img.reshape(-1, img.shape[2]) * 255).astype(np.uint32)
    packed = np.zeros(len(px), np.uint32)
    for k in range(px.shape[1]):
        packed |= px[:, k] << (8 * k)
    return len(np.unique(packed))


@pytest.mark.slow
def test_report_writes_the_pngs_and_metrics_equal_to_eval(session, capfd, tmp_path):
    import matplotlib.image

    root, run_id = session
    out_dir = tmp_path / "report"
    rc, out, err = cli(capfd, "report", run_id, "--sessions", root, "--out", out_dir)
    assert rc == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [
        "diagnostics_test_oscillator.png",
        "graph1_test_f2.png",
        "graph2_test_all_frequencies.png",
        "graph2_test_first_second.png",
        "metrics.json",
    ]
    for name in names[:4]:  # Graph 1, both pages of Graph 2, the diagnostics
        img = matplotlib.image.imread(out_dir / name)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
        assert colours(img) > 20  # not blank
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["kind"] == "frozen_mse"
    assert len(metrics["test"]["per_frequency"]) == 4
    # the same numbers as `freqtui eval --json`, in a separate process, on the same file
    r = subprocess.run(
        [sys.executable, "-m", "freqtui.cli", "eval", metrics["path"], "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == metrics
    # and those are the numbers the run itself recorded at its last frozen evaluation
    # (approx: the run evaluated on its worker thread, maybe with another thread count, so
    # in another summation order: the bound is measured against float64)
    last = read_file(Path(metrics["path"]))["history"]["evals"][-1]
    config, model = load_model(Path(metrics["path"]))
    for part, signal in (("train", train_set(config)), ("test", test_set(config))):
        bound, block_bound = frozen_mse_gap_bound(model, signal)
        assert abs(last[part]["overall"] - metrics[part]["overall"]) <= bound
        gap = np.abs(np.array(last[part]["per_frequency"]) - metrics[part]["per_frequency"])
        assert (gap <= block_bound).all(), (gap, block_bound)


def test_report_refuses_an_out_path_that_is_a_file(session, capfd, tmp_path):
    root, run_id = session
    blocker = tmp_path / "taken"
    blocker.write_text("mine")
    rc, out, err = cli(capfd, "report", run_id, "--sessions", root, "--out", blocker)
    assert rc == 2 and "not a folder" in err and blocker.read_text() == "mine"


def test_unknown_session_is_one_line(tmp_path, capfd):
    rc, out, err = cli(capfd, "eval", "nope", "--sessions", tmp_path)
    assert rc == 2 and "no such file or session" in err and len(err.strip().splitlines()) == 1
    rc, out, err = cli(capfd, "sessions", "--sessions", tmp_path / "none")
    assert rc == 0 and "no sessions in" in out
