"""A method's options, each declared once (engine/methods.py): typed, bounded on one line
that names the option and its bounds, and listed with default, bounds and description by
`freqtui methods` and the help."""

import subprocess
import sys

import pytest

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.methods import CLOCK, METHODS, TBPTT
from engine.options import Option, parse_assignment


@pytest.mark.parametrize(
    "method, options, words",
    [
        ("clock", {"grow": 1.0}, "clock option grow must be in (1, 1,000], got 1"),
        ("clock", {"grow": 1001}, "clock option grow must be in (1, 1,000], got 1,001"),
        ("clock", {"draws": 65}, "clock option draws must be in 1..64, got 65"),
        ("clock", {"anneal": 2}, "clock option anneal must be 0 or 1, got 2"),
        ("clock", {"min_lr_mult": 0}, "clock option min_lr_mult must be in (0, 1], got 0"),
        ("clock", {"thr": -1}, "clock option thr must be >= 0, got -1"),
        ("clock", {"k0": 0}, "clock option k0 must be > 0, got 0"),
        ("clock", {"polish": 2.5}, "clock option polish must be an integer, got 2.5"),
        ("clock", {"thr": "low"}, "clock option thr must be a number, got 'low'"),
        ("clock", {"patience": 2 * 10**9}, "clock option patience must be at most 1e+09"),
        ("clock", {"val_seed": 2}, "val_seed must be a seed of its own"),
        ("tbptt", {"reset": "never"}, "tbptt option reset must be block or carry, got 'never'"),
        ("tbptt", {"k": 100_001}, "tbptt option k must be in 1..100,000, got 100,001"),
        ("handoff", {"k": 1}, "method 'handoff' has no option k; it takes none"),
    ],
)
def test_a_bad_option_is_one_line_naming_it_and_its_bounds(method, options, words):
    with pytest.raises(FreqtuiError) as err:
        RunConfig(method=method, options=options).validated()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_values_are_typed_from_the_declaration_and_defaults_fill_in():
    o = CLOCK.values({"k0": 2, "t0": 500.0, "select": 0})
    assert o["k0"] == 2.0 and isinstance(o["k0"], float)
    assert o["t0"] == 500 and isinstance(o["t0"], int)
    assert o["select"] == 0 and o["polish"] == 10  # given, and the default
    assert TBPTT.values({}) == {"k": 200, "reset": "block", "noise": "fresh", "noise_seed": 1000}


def test_the_bounds_are_the_edges_themselves():
    grow = next(o for o in CLOCK.options if o.name == "grow")
    assert grow.value(1000, "clock") == 1000.0  # (1, 1000]: the high edge is in
    with pytest.raises(FreqtuiError):
        grow.value(1, "clock")  # the low edge is out
    seed = Option("s", 0, int, 0, 2**32 - 1, "a seed")
    assert seed.value(2**32 - 1, "m") == 2**32 - 1  # above the size cap: its own bound wins


def test_an_assignment_reads_as_int_then_float_then_word():
    assert parse_assignment("t0=1000") == ("t0", 1000)
    assert parse_assignment("k0=0.5") == ("k0", 0.5)
    assert parse_assignment("reset=carry") == ("reset", "carry")
    with pytest.raises(FreqtuiError, match="NAME=VALUE"):
        parse_assignment("t0")


def test_methods_and_the_help_list_every_option_with_default_bounds_and_description(capsys):
    from freqtui.cli import main

    assert main(["methods"]) == 0
    methods = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for method in METHODS.values():
        for o in method.options:
            assert len(o.help) > 20, o.name  # a description, not a placeholder
            for text in (methods, help_text):
                line = next(ln for ln in text.splitlines() if f"-O {o.name}=" in ln)
                assert f"-O {o.name}={o.default}" in line and o.bounds in line, line
                assert line.rstrip().endswith(o.help), line


def test_a_bad_option_from_the_command_line_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "freqtui.cli", "train", "--headless", "--sessions",
         str(tmp_path), "--duration", "0.2", "-O", "slide=1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr == "freqtui: error: clock option slide must be > 1, got 1\n"
