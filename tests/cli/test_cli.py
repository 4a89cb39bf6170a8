"""The headless CLI as a user runs it: real processes, real exit codes, real files."""

import csv
import math
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "freqtui.cli"]


def run(*args, cwd=None, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env
    )


def test_data_writes_the_spec_rows(tmp_path):
    r = run("data", "--out", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "d" / "train.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["t", "S", "C1", "C2", "C3", "C4", "target"]
    data = rows[1:]
    assert len(data) == 40_000
    row = data[10_001]
    assert float(row[0]) == pytest.approx(0.001)
    assert [int(v) for v in row[2:6]] == [0, 1, 0, 0]
    assert float(row[6]) == pytest.approx(math.sin(2 * math.pi * 3 * 0.001), abs=1e-6)
    with open(tmp_path / "d" / "test.csv") as f:
        assert sum(1 for _ in f) == 40_001


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--headless", "--fs", "10"], "Nyquist"),
        (["train", "--headless", "--lr", "-1"], "lr"),
        (["train", "--headless", "--epochs", "0"], "epochs"),
        (["train", "--headless", "--phase-scale", "nan"], "phase-scale"),
        (["train", "--headless", "--method", "nope"], "unknown method"),
        (["--fs", "10"], "Nyquist"),  # the console refuses before it opens
        (["eval", "missing.pt"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert words in lines[0] and "Traceback" not in r.stderr


def test_eval_refuses_foreign_garbage_and_folder_paths(tmp_path):
    foreign = tmp_path / "foreign.pt"
    foreign.write_text("not weights at all\n")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 10)
    for path in (foreign, garbage, tmp_path):
        r = run("eval", str(path))
        assert r.returncode == 2, (path, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
        assert str(path) in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_headless_epoch_on_the_spec_data_prints_online_loss_and_frozen_mse(tmp_path):
    out = tmp_path / "w.pt"
    r = run("train", "--headless", "--method", "handoff", "--epochs", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "state check passed" in text
    assert "online loss (weights moving)" in text
    assert "frozen MSE (weights fixed)" in text
    train_line = next(line for line in text.splitlines() if "train (seed set 1)" in line)
    test_line = next(line for line in text.splitlines() if "test  (seed set 2)" in line)
    mse_train, mse_test = float(train_line.split()[4]), float(test_line.split()[4])
    # SPEC §4: the hand-off's pattern cannot beat predicting zero; printed as it is
    assert 0.45 < mse_train < 0.6 and 0.45 < mse_test < 0.6
    r2 = run("eval", str(out), "--json")
    assert r2.returncode == 0, r2.stderr
    import json

    report = json.loads(r2.stdout)
    assert report["test"]["overall"] == pytest.approx(mse_test, abs=1e-4)
    assert report["train"]["overall"] == pytest.approx(mse_train, abs=1e-4)


def test_default_autosave_is_half_an_epoch_and_at_least_20000_rows(tmp_path):
    from engine.config import RunConfig
    from engine.run import TrainingRun

    def autosave(method, **flags):
        run = TrainingRun(RunConfig(method=method), state_check=False, sessions_root=tmp_path)
        run.set_autosave(flags.get("autosave"))
        return run.autosave_every

    assert autosave("handoff") == 20_000  # 40,000-row epochs
    assert autosave("clock") == 1_000_000  # 2,000,000-row epochs of 80,000-row steps
    assert autosave("clock", autosave=500) == 500
    assert autosave("clock", autosave=0) is None


def test_help_and_methods_state_what_a_plain_run_uses(capsys):
    from engine.config import RunConfig
    from freqtui.cli import main

    plain = RunConfig()  # what a plain `freqtui` trains
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, value in (("--epochs", plain.epochs), ("--lr", plain.lr), ("--clip", plain.clip)):
        assert f"{plain.method} {value:g} (the default method)" in text, flag
    assert f"default {plain.method};" in text and f"default {plain.duration:g})" in text
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    block = out.split(f"{plain.method}  (the default method):")[1].split("\n")
    assert f"lr {plain.lr:g}, clip {plain.clip:g}, epochs {plain.epochs}" in block[1]
    assert "t0=1000" in block[2]  # the method's -O options with their defaults
    for name in ("handoff", "tbptt"):
        assert f"\n{name}: " in out


@pytest.mark.parametrize(
    "args",
    [
        ["--epochs", "3", "--lr", "0.5", "train", "--headless", "--method", "handoff"],
        ["--epochs", "-1", "train", "--headless"],
        ["--method=handoff", "eval", "x.pt"],
        ["--resume", "ID", "sessions"],
    ],
)
def test_a_console_flag_before_a_command_is_refused_not_dropped(args, tmp_path):
    """`freqtui --epochs 3 train` trained the method's own epochs without a word."""
    r = run(*args, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.strip().splitlines()
    flag = args[0].split("=")[0]
    command = next(a for a in args if a in ("train", "eval", "sessions"))
    assert f"{flag} goes after the command: freqtui {command} {flag}" in line
    assert not list(tmp_path.iterdir())  # nothing was trained or written


def test_sessions_before_a_command_still_counts_and_version_answers(tmp_path):
    r = run("--sessions", str(tmp_path / "s"), "sessions", cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and "no sessions in" in r.stdout
    v = run("--version", timeout=60)
    assert v.returncode == 0 and v.stdout.strip().startswith("freqtui 0.")
