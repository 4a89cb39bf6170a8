"""A reader that stops reading (`freqtui sessions | head -1`) ends the command quietly:
no BrokenPipeError traceback, exit 141 (128 + SIGPIPE) as a tool killed by it reports."""

import subprocess
import sys

import pytest

from engine.config import RunConfig
from engine.run import TrainingRun

CLI = [sys.executable, "-m", "freqtui.cli"]


@pytest.mark.slow
@pytest.mark.parametrize("args", [["methods"], ["sessions"], ["sessions", "--json"]])
def test_a_closed_stdout_ends_quietly(tmp_path, args):
    config = RunConfig(method="handoff", duration=0.05, backend="torch").validated()
    for i in range(3):
        TrainingRun(
            config, sessions_root=tmp_path, run_id=f"r{i}", state_check=False
        ).save_snapshot()
    p = subprocess.Popen(
        [*CLI, *args, *(["--sessions", str(tmp_path)] if args[0] == "sessions" else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    p.stdout.close()  # the reader is gone before the first line
    err = p.stderr.read().decode()
    assert p.wait(120) == 141, err
    assert err == ""


@pytest.mark.slow
def test_a_reader_gone_mid_run_stops_it_like_a_signal_and_saves(tmp_path):
    sessions = tmp_path / "s"
    p = subprocess.Popen(
        [*CLI, "train", "--headless", "--sessions", str(sessions), "--duration", "0.2"]
        + ["--method", "handoff", "--backend", "torch", "--epochs", "50", "--autosave", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in p.stdout:  # read until training has begun, then stop reading for good
        if "state check passed" in line:
            break
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(300) == 141, err
    assert "Traceback" not in err and "stopped by SIGPIPE" in err
    (folder,) = sessions.iterdir()
    assert (folder / "latest.pt").exists()  # --autosave 0: the stop wrote it
