"""`freqtui compare`: the table of the latest frozen MSE per frequency, best marked, and
the overlay PNG, on the committed models/ snapshots and on sessions named by id."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.store.compare import load_history
from freqtui.charts import overlay_figure
from freqtui.cli import main
from freqtui.text import fmt_mse

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


def table_rows(stdout: str) -> dict[str, dict]:
    """The data rows of `freqtui compare`: set, id, method, duration, phase, seeds, cells."""
    out = {}
    for line in stdout.splitlines()[4:]:
        parts = line.split()
        if len(parts) < 8 or parts[4] != "s":
            continue
        set_, id_, method, dur, _, phase, seeds, *cells = parts
        out[id_] = dict(
            set=set_,
            method=method,
            duration=float(dur),
            phase=float(phase),
            seeds=seeds,
            cells=cells,
        )
    return out


def marked(row: dict) -> list[bool]:
    return [c.endswith("*") for c in row["cells"]]


@pytest.mark.slow
def test_sessions_on_different_data_are_not_ranked_and_the_png_is_written(tmp_path):
    """Phase scale 1 and 0.01 are different test sets: the table shows each one's
    duration, phase scale and seeds, marks no best, and one line says why."""
    png = tmp_path / "overlay.png"
    r = run("compare", *map(str, MODELS), "--png", str(png))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("not ranked: each session was evaluated on different data")
    assert "f=1 Hz" in lines[2] and "f=7 Hz" in lines[2]
    assert lines[3].split()[:6] == ["set", "id", "method", "duration", "phase", "seeds"]
    rows = table_rows(r.stdout)
    assert set(rows) == {"clock_phase1.0", "clock_phase0.01"}
    for path in MODELS:
        h = load_history(path)
        row = rows[path.stem]
        assert (row["duration"], row["phase"], row["seeds"]) == (
            h.duration,
            h.phase_scale,
            f"{h.train_seed}/{h.test_seed}",
        )
        values = [v for pair in zip(h.latest_train, h.latest_test, strict=True) for v in pair]
        assert [c.rstrip("*") for c in row["cells"]] == [fmt_mse(v) for v in values]
        assert not any(marked(row))  # phase 0.01 is lower everywhere, yet not marked best
    assert rows["clock_phase1.0"]["set"] != rows["clock_phase0.01"]["set"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.slow
def test_the_committed_models_are_ranked_within_each_phase_scale(tmp_path):
    models = sorted((ROOT / "models").glob("*.pt"))
    r = run("compare", *map(str, models))
    assert r.returncode == 0, r.stderr
    assert "2 data sets" in r.stdout.splitlines()[1] and "never across sets" in r.stdout
    rows = table_rows(r.stdout)
    assert len(rows) == len(models)
    for phase in (1.0, 0.01):
        group = {k: v for k, v in rows.items() if v["phase"] == phase}
        assert len(group) == 2 and len({v["set"] for v in group.values()}) == 1
        for c in range(len(next(iter(group.values()))["cells"])):  # one best per column
            values = {k: float(v["cells"][c].rstrip("*")) for k, v in group.items()}
            best = [k for k, v in group.items() if marked(v)[c]]
            assert best == [min(values, key=values.get)]


@pytest.mark.slow
def test_headless_sessions_of_two_durations_get_no_common_best(tmp_path, capfd):
    """Three real sessions: two of 0.05 s (torch seeds 0 and 1), one of 0.1 s. Together
    the 0.1 s one is never marked; the two of 0.05 s are ranked between themselves; the
    0.1 s one with one 0.05 s one: nothing ranked. (The sessions are trained in this
    process, to keep the test short; the comparisons run as the command.)"""
    root = tmp_path / "s"
    ids = {}
    for name, flags in (("a", ["--seed", "0"]), ("b", ["--seed", "1"]), ("long", [])):
        dur = "0.1" if name == "long" else "0.05"
        argv = ["train", "--headless", "--method", "handoff", "--backend", "torch"]
        argv += ["--duration", dur, "--sessions", str(root), "--autosave", "0", *flags]
        assert main(argv) == 0
        out = capfd.readouterr().out
        ids[name] = next(
            line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("session ")
        )
    r = run("compare", ids["a"], ids["b"], ids["long"], "--sessions", str(root))
    assert r.returncode == 0, r.stderr
    assert "2 data sets" in r.stdout.splitlines()[1]
    rows = table_rows(r.stdout)
    assert rows[ids["long"]]["duration"] == 0.1 and not any(marked(rows[ids["long"]]))
    a, b = rows[ids["a"]], rows[ids["b"]]
    assert a["set"] == b["set"] != rows[ids["long"]]["set"]
    for c in range(len(a["cells"])):  # the lesser of the two same-data sessions, each column
        va, vb = float(a["cells"][c].rstrip("*")), float(b["cells"][c].rstrip("*"))
        assert marked(a)[c] + marked(b)[c] == 1
        assert marked(a)[c] == (va < vb) or va == vb
    r = run("compare", ids["a"], ids["long"], "--sessions", str(root))
    assert r.returncode == 0 and "*" not in "".join(r.stdout.splitlines()[2:])
    assert r.stdout.splitlines()[1].startswith("not ranked:")
    assert "0.05 s" in r.stdout.splitlines()[1] and "0.1 s" in r.stdout.splitlines()[1]


@pytest.mark.slow
def test_compare_of_an_unknown_session_is_one_line_and_exit_2(tmp_path):
    r = run("compare", str(MODELS[0]), "no-such-session")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "no-such-session" in r.stderr


def test_the_png_tells_the_sessions_apart_by_marker_and_ticks_rows_short():
    import matplotlib.pyplot as plt

    models = sorted((ROOT / "models").glob("*.pt"))
    fig = overlay_figure([load_history(m) for m in models])
    fig.canvas.draw()
    try:
        for ax in fig.axes:
            lines = ax.get_lines()
            assert len(lines) == len(models)
            assert len({line.get_marker() for line in lines}) == len(models)
            ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
            assert "100M" in ticks and not any(t.isdigit() and len(t) > 6 for t in ticks)
        assert "different data" in fig._suptitle.get_text()
    finally:
        plt.close(fig)
