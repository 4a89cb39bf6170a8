"""Every numeric flag and -O option is checked for range and finiteness before any work:
one line on stderr, exit 2, nothing trained and no session folder made."""

import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "freqtui.cli"]
TINY = ["--duration", "0.2", "--epochs", "1"]

BAD = [
    (["--train-seed", "-1"], "--train-seed"),
    (["--seed", "99999999999999999999999"], "--seed"),
    (["--test-seed", "-7"], "--test-seed"),  # used only at evaluation: refused up front
    (["--test-seed", str(2**32)], "--test-seed"),
    (["--hidden", "100000"], "--hidden"),
    (["--layers", "100000"], "--layers"),
    (["--duration", "1e4"], "rows per set"),
    (["--fs", "1e308", "--duration", "1e308"], "rows per set"),
    (["--epochs", "10000000000"], "--epochs"),
    (["--lr", "inf"], "--lr"),
    (["--autosave", "-5"], "--autosave"),
    (["-O", "t0=inf"], "t0"),
    (["-O", "epoch_sets=inf"], "epoch_sets"),
    (["-O", "grow=nan"], "grow"),
    (["-O", "draws=100000"], "draws"),
    (["-O", "noise_seed=-1"], "noise_seed"),
    (["--method", "tbptt", "-O", "k=inf"], "k"),
    (["--method", "tbptt", "-O", "k=1e12"], "k"),
]


@pytest.mark.parametrize("flags, words", BAD, ids=[" ".join(f) for f, _ in BAD])
def test_a_bad_number_is_one_line_and_exit_2_before_any_row(tmp_path, flags, words):
    sessions = tmp_path / "s"
    r = subprocess.run(
        [*CLI, "train", "--headless", "--sessions", str(sessions), *TINY, *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert "training:" not in r.stdout and "epoch" not in r.stdout  # no work began
    assert not sessions.exists() or not any(sessions.iterdir())


def test_the_console_refuses_a_bad_number_before_it_opens(tmp_path):
    r = subprocess.run(
        [*CLI, "--sessions", str(tmp_path / "s"), *TINY, "--layers", "100000"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TERM": "dumb"},
    )
    assert r.returncode == 2 and "--layers" in r.stderr and "\x1b[" not in r.stdout
