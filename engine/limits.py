"""Bounds on every number a run takes, checked before any work.

A flag, an `-O` option and a config read back from a file all pass through `check_config`
(called first thing by `RunConfig.validated`), so a value that would cost gigabytes, hang,
or overflow later is refused here on one line; an `-O` option's own bounds are declared
with it (engine/methods.py) and checked by `RunConfig.validated` too. The sizes are bounded to what this tool
trains: a sample-by-sample LSTM of at most MAX_HIDDEN units and MAX_LAYERS layers, on at
most MAX_ROWS_PER_SET rows per set (10x the task as written).
"""

from __future__ import annotations

import math
from typing import Any

from engine.errors import FreqtuiError

SEED_LIMIT = 2**32  # numpy and torch seeds: 0 <= seed < 2**32
MAX_HIDDEN = 512
MAX_LAYERS = 4
MAX_BLOCKS = 16  # frequencies, i.e. frequency blocks and one-hot inputs
MAX_ROWS_PER_SET = 400_000  # duration x fs x blocks; the task is 40,000
MAX_EPOCHS = 100_000
MAX_LR = 10.0
MAX_AUTOSAVE = 10**12
MAX_OPTIONS = 32
MAX_TEXT = 100  # characters of a method name, backend or string option
MAX_INT_OPTION = 10**9  # an option without a high bound of its own (engine/methods.py)
# a sweep: its cells (grid combinations x seeds) are held in memory, and each running cell
# holds a lock file open in the driver, so the grid is bounded before anything is made
MAX_SWEEP_CELLS = 1_000
MAX_SWEEP_VALUES = 100  # values of one --grid key
MAX_NAME_BYTES = 200  # a sweep's --name, and so its folder's name (a filename holds 255)
MAX_SNAPSHOT_EVERY_S = 86_400.0  # --snapshot-every: at least one return a day
MAX_CONNECT_TIMEOUT_S = 3_600.0
MAX_WORKERS = 256

SEED_FIELDS = ("train_seed", "test_seed", "torch_seed")
INT_FIELDS = ("hidden_size", "num_layers", "epochs", *SEED_FIELDS)
FLOAT_FIELDS = ("fs", "duration", "amp_low", "amp_high", "phase_scale", "lr", "clip")
# the CLI's flag for a field, so a message names what the user typed
FLAG_NAMES = {"hidden_size": "--hidden", "num_layers": "--layers", "torch_seed": "--seed"}


def flag(name: str) -> str:
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_seed(name: str, v: Any) -> None:
    if not is_int(v) or not 0 <= v < SEED_LIMIT:
        raise FreqtuiError(f"{name} must be an integer with 0 <= seed < 2**32, got {_show(v)}")


def check_autosave(rows: Any) -> None:
    """--autosave ROWS: 0 (only at the end) or a positive row count."""
    if rows is None:
        return
    if not is_int(rows) or not 0 <= rows <= MAX_AUTOSAVE:
        raise FreqtuiError(
            f"--autosave must be 0 (only at the end) or a row count >= 1, got {rows}"
        )


def check_sweep_size(cells: int, what: str) -> None:
    """A sweep's cell count (grid combinations x seeds, computed, not made): bounded."""
    if cells > MAX_SWEEP_CELLS:
        raise FreqtuiError(
            f"{what} is {_rows(cells)} cells; a sweep trains at most {MAX_SWEEP_CELLS:,}"
        )


def check_seconds(name: str, v: Any, high: float) -> None:
    """A duration flag: a finite number of seconds in (0, high]."""
    if not is_number(v) or not math.isfinite(v) or not 0 < v <= high:
        raise FreqtuiError(f"{name} must be a number of seconds in (0, {high:g}], got {_show(v)}")


def check_workers(v: Any) -> None:
    if v is not None and (not is_int(v) or not 1 <= v <= MAX_WORKERS):
        raise FreqtuiError(f"--workers must be in 1..{MAX_WORKERS}, got {_show(v)}")


def check_config(c: Any) -> None:  # a RunConfig (config.py imports this module)
    """Types, finiteness and bounds of every field; FreqtuiError names the first bad one."""
    for name in INT_FIELDS:
        v = getattr(c, name)
        if not is_int(v):
            raise FreqtuiError(f"{flag(name)} must be an integer, got {_show(v)}")
    for name in FLOAT_FIELDS:
        v = getattr(c, name)
        if not is_number(v) or not math.isfinite(v):
            raise FreqtuiError(f"{flag(name)} must be a finite number, got {_show(v)}")
    for name in SEED_FIELDS:
        check_seed(flag(name), getattr(c, name))
    if not 1 <= c.hidden_size <= MAX_HIDDEN:
        raise FreqtuiError(f"--hidden must be in 1..{MAX_HIDDEN}, got {c.hidden_size}")
    if not 1 <= c.num_layers <= MAX_LAYERS:
        raise FreqtuiError(f"--layers must be in 1..{MAX_LAYERS}, got {c.num_layers}")
    if not 1 <= c.epochs <= MAX_EPOCHS:
        raise FreqtuiError(f"--epochs must be in 1..{MAX_EPOCHS:,}, got {c.epochs}")
    if not 0 < c.lr <= MAX_LR:
        raise FreqtuiError(f"--lr must be in (0, {MAX_LR:g}], got {c.lr}")
    for name in ("method", "backend"):
        v = getattr(c, name)
        if not isinstance(v, str) or len(v) > MAX_TEXT:
            raise FreqtuiError(f"{flag(name)} must be a short name, got {_show(v)}")
    freqs = c.frequencies
    if not isinstance(freqs, tuple) or not 1 <= len(freqs) <= MAX_BLOCKS:
        raise FreqtuiError(f"between 1 and {MAX_BLOCKS} frequencies are needed")
    for f in freqs:
        if not is_number(f) or not math.isfinite(f):
            raise FreqtuiError(f"frequencies must be finite numbers, got {_show(f)}")
    # duration x fs x blocks before n_samples is rounded: 1e300 x 1e300 is inf, not a crash
    rows = c.duration * c.fs * len(freqs)
    if not (math.isfinite(rows) and rows <= MAX_ROWS_PER_SET):
        raise FreqtuiError(
            f"duration {c.duration:g} s x fs {c.fs:g} Hz x {len(freqs)} blocks is "
            f"{_rows(rows)} rows per set; this tool trains at most {MAX_ROWS_PER_SET:,}"
        )
    check_options(c.options)


def check_options(options: Any) -> None:
    """`-O KEY=VALUE`: a few plain values, short words or finite numbers; each option's
    own bounds are its declaration's (engine/methods.py), checked by the method."""
    if not isinstance(options, dict) or len(options) > MAX_OPTIONS:
        raise FreqtuiError(f"options must be at most {MAX_OPTIONS} KEY=VALUE pairs")
    for key, v in options.items():
        if not isinstance(key, str) or len(key) > MAX_TEXT:
            raise FreqtuiError(f"option names are short strings, got {_show(key)}")
        if isinstance(v, str):
            if len(v) > MAX_TEXT:
                raise FreqtuiError(f"option {key}: a value of {len(v)} characters is too long")
            continue
        if not is_number(v) and not isinstance(v, bool):
            raise FreqtuiError(f"option {key} must be a number or a word, got {_show(v)}")
        if not math.isfinite(v):
            raise FreqtuiError(f"option {key} must be a finite number, got {v}")


def check_config_dict(d: Any) -> None:
    """A config as read from a file, before any field is converted: a dict of plain
    values, its frequencies a short list and its options a small dict."""
    if not isinstance(d, dict) or len(d) > 64:
        raise FreqtuiError("the config is not a dict of settings")
    freqs = d.get("frequencies", ())
    if not isinstance(freqs, (list, tuple)) or not 1 <= len(freqs) <= MAX_BLOCKS:
        raise FreqtuiError(f"frequencies must be a list of 1 to {MAX_BLOCKS} numbers")
    if not all(is_number(f) for f in freqs):
        raise FreqtuiError("frequencies must be numbers")
    options = d.get("options", {})
    if not isinstance(options, dict):
        raise FreqtuiError("options must be a dict")
    for k, v in d.items():
        if k in ("frequencies", "options"):
            continue
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise FreqtuiError(f"{k} must be a plain value, got {type(v).__name__}")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _rows(rows: float) -> str:
    return f"{rows:,.0f}" if math.isfinite(rows) and rows < 1e15 else f"{rows:.3g}"
