"""`freqtui compare`: the table of the latest frozen MSE per frequency, best marked, and
the overlay PNG, on the committed models/ snapshots and on sessions named by id."""

import os
import subprocess
import sys
from pathlib import Path

from engine.compare import load_history
from freqtui.compare import fmt_mse

ROOT = Path(__file__).resolve().parents[2]
MODELS = [ROOT / "models" / "clock_phase1.0.pt", ROOT / "models" / "clock_phase0.01.pt"]


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "freqtui.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_compare_prints_each_frequency_marks_the_best_and_writes_the_png(tmp_path):
    png = tmp_path / "overlay.png"
    r = run("compare", *map(str, MODELS), "--png", str(png))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "f=1 Hz" in lines[1] and "f=7 Hz" in lines[1]
    rows = {line.split()[0]: line.split()[2:] for line in lines[3:5]}
    assert set(rows) == {"clock_phase1.0", "clock_phase0.01"}
    for path in MODELS:
        h = load_history(path)
        cells = rows[path.stem]
        values = [v for pair in zip(h.latest_train, h.latest_test, strict=True) for v in pair]
        assert [c.rstrip("*") for c in cells] == [fmt_mse(v) for v in values]
    # phase scale 0.01 is below 1.0 in every column: every best mark is on its row
    assert all(c.endswith("*") for c in rows["clock_phase0.01"])
    assert not any(c.endswith("*") for c in rows["clock_phase1.0"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_compare_of_an_unknown_session_is_one_line_and_exit_2(tmp_path):
    r = run("compare", str(MODELS[0]), "no-such-session")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "no-such-session" in r.stderr
