"""Bounds on the numbers a command takes besides a run's config, checked before any work:
the autosave interval, a sweep's size, seeds and durations, its worker count; how long a
stop waits; and the small helpers the checks share. A refusal names the value by the
caller's word for it (`name`: the CLI passes its flag). A RunConfig's fields are checked
by `RunConfig.validated` (engine/config.py), an `-O` option by its declaration
(engine/options.py).
"""

from __future__ import annotations

import math
from typing import Any

from engine.errors import FreqtuiError

SEED_LIMIT = 2**32  # numpy and torch seeds: 0 <= seed < 2**32
MAX_AUTOSAVE = 10**12
# a sweep: its cells (grid combinations x seeds) are held in memory, and each running cell
# holds a lock file open in the driver, so the grid is bounded before anything is made
MAX_SWEEP_CELLS = 1_000
MAX_SWEEP_VALUES = 100  # values of one --grid key
MAX_NAME_BYTES = 200  # a sweep's --name, and so its folder's name (a filename holds 255)
MAX_SNAPSHOT_EVERY_S = 86_400.0  # --snapshot-every: at least one return a day
MAX_CONNECT_TIMEOUT_S = 3_600.0
MAX_WORKERS = 256
# a stop (q, a signal, a sweep's Ctrl-C) waits at most this long for the chunk or evaluation
# under way and the final save: the console, a headless run, a sweep's driver and its cells
STOP_WAIT_S = 600.0


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_seed(name: str, v: Any) -> None:
    if not is_int(v) or not 0 <= v < SEED_LIMIT:
        raise FreqtuiError(f"{name} must be an integer with 0 <= seed < 2**32, got {show(v)}")


def check_autosave(name: str, rows: Any) -> None:
    """Rows between autosaves: 0 (only at the end) or a positive row count."""
    if rows is None:
        return
    if not is_int(rows) or not 0 <= rows <= MAX_AUTOSAVE:
        raise FreqtuiError(f"{name} must be 0 (only at the end) or a row count >= 1, got {rows}")


def check_sweep_size(cells: int, what: str) -> None:
    """A sweep's cell count (grid combinations x seeds, computed, not made): bounded."""
    if cells > MAX_SWEEP_CELLS:
        raise FreqtuiError(
            f"{what} is {big_count(cells)} cells; a sweep trains at most {MAX_SWEEP_CELLS:,}"
        )


def check_seconds(name: str, v: Any, high: float) -> None:
    """A duration flag: a finite number of seconds in (0, high]."""
    if not is_number(v) or not math.isfinite(v) or not 0 < v <= high:
        raise FreqtuiError(f"{name} must be a number of seconds in (0, {high:g}], got {show(v)}")


def check_workers(name: str, v: Any) -> None:
    if v is not None and (not is_int(v) or not 1 <= v <= MAX_WORKERS):
        raise FreqtuiError(f"{name} must be in 1..{MAX_WORKERS}, got {show(v)}")


def show(v: Any) -> str:
    """A value as a message quotes it: its repr, cut short."""
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def big_count(rows: float) -> str:
    """A count as a message says it: 1,234,567, or 1.2e+20 when huge (or not finite)."""
    return f"{rows:,.0f}" if math.isfinite(rows) and rows < 1e15 else f"{rows:.3g}"
