"""Flags as a user mistypes them, and resuming with another --epochs."""

from __future__ import annotations

import pytest

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from freqtui.commands.train import resumed_run
from tests.cli.test_cli import run


@pytest.mark.parametrize(
    "args, named, suggested",
    [
        (["train", "--headles"], "--headles", "--headless"),  # not taken as --headless
        (["--epcohs", "3"], "--epcohs", "--epochs"),  # not "invalid choice: '3'"
        (["train", "--headless", "--phase-scal", "0.1"], "--phase-scal", "--phase-scale"),
    ],
)
def test_an_unknown_flag_is_named_with_the_closest_one(tmp_path, args, named, suggested):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"unknown flag {named}" in lines[0] and f"did you mean {suggested}?" in lines[0]
    assert not r.stdout  # nothing trained


def test_abbreviations_are_off():
    from freqtui.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--head"])


def test_out_without_headless_is_refused_not_ignored(tmp_path, capsys):
    # the console saves a session, never a weights file: --out there used to do nothing
    from freqtui.cli import main

    weights = tmp_path / "w.pt"
    assert main(["train", "--out", str(weights), "--duration", "0.2"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--out" in line and "--headless" in line, line
    assert not weights.exists() and not (tmp_path / "sessions").exists()


def test_a_new_run_refused_for_its_out_leaves_no_empty_session(tmp_path, capsys):
    from freqtui.cli import main

    sessions = tmp_path / "sessions"
    argv = ["train", "--headless", "--duration", "0.2", "--sessions", str(sessions)]
    assert main([*argv, "--out", str(tmp_path)]) == 2  # a folder: refused
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is a folder" in line, line
    assert not sessions.exists() or not any(sessions.iterdir())


def resumed(run_id: str, epochs: int | None, root) -> TrainingRun:
    """`--resume RUN_ID --epochs N` as the CLI resumes it (the engine says the flag's name)."""
    return resumed_run(run_id, {"epochs": epochs}, root)


def _finished_handoff(root, epochs: int = 2) -> TrainingRun:
    cfg = RunConfig(method="handoff", backend="torch", duration=0.05, epochs=epochs).validated()
    r = TrainingRun(cfg, sessions_root=root, state_check=False, save_on_end=True)
    r.start()
    r.join(60)
    assert r.finished
    return r


def test_resume_refuses_epochs_not_above_those_done(tmp_path):
    done = _finished_handoff(tmp_path)
    for n in (1, 2):
        with pytest.raises(FreqtuiError, match=f"--epochs {n}: .*completed 2 of its 2"):
            resumed(done.run_id, n, tmp_path)
    assert resumed(done.run_id, 3, tmp_path).config.epochs == 3


def test_resume_with_other_epochs_says_what_changes_in_the_clocks_anneal(tmp_path):
    cfg = RunConfig(method="clock", duration=0.05, epochs=4, options={"epoch_sets": 1})
    first = TrainingRun(cfg.validated(), sessions_root=tmp_path, state_check=False)
    tr = first.trainer
    tr.epoch, tr.done_at = 2, 0  # two epochs done, curriculum finished at the start
    tr.k, tr.fcur, tr.amp = 1000.0, tr.freqs.copy(), 1.0  # whole windows, S fed
    # its polish (10 epochs) would end with epoch 11: --epochs caps it at 4, then at 8
    first.save_snapshot()
    note = resumed(first.run_id, 8, tmp_path).resume_note
    assert "--epochs 8 (was 4)" in note and "anneal" in note
    # linear from the curriculum's end (row 0) to the run's end: half left of 4 epochs,
    # three quarters left of 8, so the rate jumps from lr/2 to 3 lr/4
    lr = cfg.validated().lr
    assert f"from {lr * 2 / 4:.2e} to {lr * 6 / 8:.2e}" in note
    same = resumed(first.run_id, None, tmp_path)
    assert same.resume_note == ""  # the same length: nothing changes
    handoff = _finished_handoff(tmp_path / "h")
    assert resumed(handoff.run_id, 3, tmp_path / "h").resume_note == ""


@pytest.mark.slow
def test_headless_ends_with_the_resume_command(tmp_path):
    r = run(
        "train",
        "--headless",
        "--method",
        "handoff",
        "--backend",
        "torch",
        "--duration",
        "0.05",
        "--epochs",
        "1",
        "--sessions",
        str(tmp_path / "s"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("session ") and "finished; to train further:" in last
    assert "freqtui train --headless --resume" in last and "--epochs 2" in last
    assert f"--sessions {tmp_path / 's'}" in last
