"""`freqtui export ID|PATH [--csv|--json] [--out FILE]` through real processes: the whole
metric history of a session as CSV or JSON, the same rows in both, every column
documented in `--help` and the README; --out refuses what it cannot write, in one line."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.export import COLUMN_NAMES, COLUMNS
from engine.run import TrainingRun
from engine.store.files import read_file

CLI = [sys.executable, "-m", "freqtui.cli"]
README = Path(__file__).resolve().parents[2] / "README.md"


def freqtui(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, str]:
    """A finished two-epoch run (an evaluation at each epoch's end), saved at its end."""
    root = tmp_path_factory.mktemp("sessions")
    config = RunConfig(method="handoff", duration=0.05, backend="torch", epochs=2)
    run = TrainingRun(config, sessions_root=root, save_on_end=True, state_check=False)
    run.start()
    run.join(120)
    assert run.finished and (root / run.run_id / "latest.pt").exists()
    return root, run.run_id


@pytest.mark.slow
def test_csv_holds_every_online_point_evaluation_and_epoch_of_the_session(tmp_path, session):
    root, run_id = session
    r = freqtui("export", run_id, "--sessions", str(root), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert tuple(rows[0]) == COLUMN_NAMES
    history = read_file(root / run_id / "latest.pt")["history"]
    evals = history["evals"]
    assert len(evals) == 2  # one at each epoch's end
    frozen = [x for x in rows if x["kind"] == "frozen"]
    assert len(frozen) == len(evals) * 2 * 5  # train and test, overall and 4 frequencies
    for e in evals:
        for name in ("train", "test"):
            mine = [
                x
                for x in frozen
                if (int(x["epoch"]), int(x["row"]), x["set"]) == (e["epoch"], e["row"], name)
            ]
            values = {x["frequency_hz"]: float(x["value"]) for x in mine}
            assert values["all"] == e[name]["overall"]
            assert [values[f] for f in ("1", "3", "5", "7")] == e[name]["per_frequency"]
    online = [x for x in rows if x["kind"] == "online" and x["frequency_hz"] == "all"]
    assert [(int(x["rows_total"]), float(x["value"])) for x in online] == [
        (p[0], p[2]) for p in history["online"]
    ]
    per_block = [x for x in rows if x["kind"] == "online" and x["frequency_hz"] != "all"]
    assert per_block and {x["frequency_hz"] for x in per_block} <= {"1", "3", "5", "7"}
    assert [
        int(x["epoch"]) for x in rows if x["kind"] == "epoch" and x["frequency_hz"] == "all"
    ] == [1, 2]


@pytest.mark.slow
def test_json_has_the_same_rows_and_says_what_each_column_is(tmp_path, session):
    root, run_id = session
    as_csv = freqtui("export", run_id, "--sessions", str(root), cwd=tmp_path).stdout
    r = freqtui("export", str(root / run_id), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["run_id"] == run_id and doc["method"] == "handoff"
    assert doc["columns"] == dict(COLUMNS)
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert len(doc["rows"]) == len(rows)
    for j, c in zip(doc["rows"], rows, strict=True):
        assert {k: "" if v is None else str(v) for k, v in j.items()} == c


@pytest.mark.slow
def test_out_writes_a_file_its_suffix_choosing_json(tmp_path, session):
    root, run_id = session
    out = tmp_path / "h.json"
    r = freqtui("export", run_id, "--sessions", str(root), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert json.loads(out.read_text())["run_id"] == run_id
    out = tmp_path / "h.txt"
    r = freqtui("export", run_id, "--sessions", str(root), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0 and out.read_text().startswith(",".join(COLUMN_NAMES))


@pytest.mark.parametrize("where", ["folder", "under-a-file", "missing-dir-under-a-file", "device"])
def test_out_refuses_what_it_cannot_write_in_one_line(tmp_path, session, where):
    root, run_id = session
    (tmp_path / "a-file").write_text("x")
    out = {
        "folder": tmp_path,
        "under-a-file": tmp_path / "a-file" / "h.csv",
        "missing-dir-under-a-file": tmp_path / "a-file" / "deeper" / "h.csv",
        "device": Path("/dev/null"),
    }[where]
    r = freqtui("export", run_id, "--sessions", str(root), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("freqtui: error: ")


def test_bad_sources_are_one_line(tmp_path):
    (tmp_path / "text.pt").write_text("hello")
    for args in (["nope"], [str(tmp_path / "text.pt")], ["x", "--csv", "--json"]):
        r = freqtui("export", *args, "--sessions", str(tmp_path), cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_every_column_is_documented_in_help_and_readme(tmp_path):
    r = freqtui("export", "--help", cwd=tmp_path)
    readme = README.read_text()
    assert "freqtui export" in readme
    for name in COLUMN_NAMES:
        assert f"  {name}" in r.stdout
        assert f"`{name}`" in readme, f"README does not document the column {name}"
