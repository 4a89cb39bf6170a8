"""`freqtui serve` refuses what it cannot do in one line, exit 2, before serving."""

import os
import subprocess
import sys

import pytest

from freqtui.cli import build_parser, console_argv


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "freqtui.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_without_textual_serve_it_says_how_to_install(tmp_path):
    fake = tmp_path / "fake" / "textual_serve"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no textual-serve here')\n")
    path = os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])
    r = run("--port", "1", env={**os.environ, "PYTHONPATH": path})
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "pip install -e '.[serve]'" in r.stderr


@pytest.mark.parametrize(
    "args, words", [(["--fs", "10"], "Nyquist"), (["--method", "nope"], "nope")]
)
def test_bad_run_flags_fail_before_serving(args, words):
    r = run(*args, "--port", "1")
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1


def test_the_served_console_gets_the_run_flags():
    args = build_parser().parse_args(
        ["serve", "--method", "tbptt", "--phase-scale", "0.01", "--seed", "3", "-O", "K=50"]
        + ["--autosave", "0", "--port", "9000"]
    )
    argv = console_argv(args)
    assert argv == [
        "--method", "tbptt", "--phase-scale", "0.01", "--seed", "3", "-O", "K=50",
        "--autosave", "0",
    ]  # fmt: skip
    again = build_parser().parse_args(argv)  # the console parses exactly these settings
    for field in ("method", "phase_scale", "torch_seed", "option", "autosave"):
        assert getattr(again, field) == getattr(args, field)
