"""A sweep's grid: `--grid KEY=V1,V2` and `--seeds` parsed and bounded, every cell (one
combination of the grid's values and one torch seed) named and given its RunConfig, and
the sweep's id.

A cell's config is the sweep's base config with the cell's values: each value either a
RunConfig field's (a run flag's) or a method option's. The base keeps the fields the
sweep's own flags set, so a cell of another method keeps an `--lr` given to the sweep but
takes that method's own lr otherwise: the same config as the single run's command line
with the cell's values as flags.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from engine import limits
from engine.config import RunConfig
from engine.errors import FreqtuiError

NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # a plain name: no path, not hidden


@dataclass(frozen=True)
class Axis:
    """One grid key: its values as typed (they name the cells' folders and results.json's
    groups) and each value typed for the config: the RunConfig `field` it sets, or (field
    None) the method option named by the key."""

    key: str
    values: tuple[str, ...]
    typed: tuple[Any, ...]
    field: str | None = None


@dataclass(frozen=True)
class Cell:
    name: str  # its session folder and run id
    values: dict[str, str]  # grid key -> value, as typed
    seed: int
    config: RunConfig


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().lstrip("-")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not vals:
            raise FreqtuiError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. method=clock,tbptt)")
        if key in ("seed", "seeds"):
            raise FreqtuiError("--grid seed=...: give the torch seeds with --seeds (e.g. 0-4)")
        if key in grid:
            raise FreqtuiError(f"--grid {key} is given twice")
        if len(set(vals)) != len(vals):
            raise FreqtuiError(f"--grid {item!r}: a value is repeated")
        if len(vals) > limits.MAX_SWEEP_VALUES:
            raise FreqtuiError(
                f"--grid {key}: {len(vals):,} values; at most {limits.MAX_SWEEP_VALUES} a key"
            )
        grid[key] = vals
    return grid


def parse_seeds(text: str) -> list[int]:
    """`0-4`, `0,2,7` or a mix (`0-2,9`); every seed a torch seed (0 <= seed < 2**32) and
    their count bounded (engine/limits.py) before a list of them is made."""
    parts: list[tuple[int, int]] = []
    try:
        for part in text.split(","):
            part = part.strip()
            lo, dash, hi = part.partition("-")
            a, b = (int(lo), int(hi)) if dash and lo else (int(part), int(part))
            if b < a:
                raise ValueError
            parts.append((a, b))
    except ValueError:
        raise FreqtuiError(f"--seeds {text!r}: expected seeds like 0-4 or 0,1,5") from None
    for a, b in parts:
        for v in (a, b):
            limits.check_seed(f"--seeds {text!r}: seed {v}", v)
    limits.check_sweep_size(sum(b - a + 1 for a, b in parts), f"--seeds {text!r}")
    seeds = [v for a, b in parts for v in range(a, b + 1)]
    if len(set(seeds)) != len(seeds):
        raise FreqtuiError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def grid_of(axes: list[Axis]) -> dict[str, list[str]]:
    """The grid as typed: key -> values (sweep.json and results.json)."""
    return {a.key: list(a.values) for a in axes}


def grid_size(grid: dict[str, list[str]], seeds: list[int]) -> int:
    return math.prod(len(v) for v in grid.values()) * len(seeds)


def check_name(name: str, what: str, plain: bool = True) -> str:
    """A folder name the sweep makes under --sessions: plain (--name), never a path or
    `..`, and short enough for a file system (a cell's name, made of the grid's values)."""
    if plain and (not NAME_RE.fullmatch(name) or name in (".", "..")):
        raise FreqtuiError(
            f"{what} {name[:60]!r}: use letters, digits, '.', '_' or '-' (a plain name, "
            "not a path, not starting with '.')"
        )
    if len(name.encode()) > limits.MAX_NAME_BYTES:
        raise FreqtuiError(
            f"{what} {name[:40]!r}...: {len(name.encode())} bytes; at most "
            f"{limits.MAX_NAME_BYTES} (a folder name)"
        )
    return name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def cell_config(
    base: RunConfig,
    given: Collection[str],
    fields: dict[str, Any],
    options: dict[str, Any],
    seed: int,
) -> RunConfig:
    """The config of one cell: `base` (whose fields named in `given` the sweep's flags
    set) with the cell's `fields`, its method `options` and torch seed `seed`, checked."""
    # restated, a field the sweep set survives a cell's change of method (RunConfig.replace
    # gives a new method its own lr, clip and epochs only where they are not among changes)
    changes: dict[str, Any] = {f: getattr(base, f) for f in given}
    changes.update(fields, torch_seed=seed)
    if options:
        changes["options"] = {**base.options, **options}
    return base.replace(**changes).validated()


def make_cells(
    axes: list[Axis], seeds: list[int], base: RunConfig, given: Collection[str] = ()
) -> list[Cell]:
    """Every combination of the grid's values, for every seed, in the grid's order."""
    combos: list[list[tuple[Axis, int]]] = [[]]
    for axis in axes:
        combos = [[*c, (axis, i)] for c in combos for i in range(len(axis.values))]
    cells = []
    for combo in combos:
        values = {a.key: a.values[i] for a, i in combo}
        fields = {a.field: a.typed[i] for a, i in combo if a.field is not None}
        options = {a.key: a.typed[i] for a, i in combo if a.field is None}
        for seed in seeds:
            pairs = [f"{_slug(k)}={_slug(v)}" for k, v in values.items()]
            name = check_name("_".join([*pairs, f"seed={seed}"]), "--grid: cell", plain=False)
            try:
                config = cell_config(base, given, fields, options, seed)
            except FreqtuiError as exc:
                raise FreqtuiError(f"grid cell {values}: {exc}") from None
            cells.append(Cell(name, values, seed, config))
    return cells


def sweep_id(cells: list[Cell]) -> str:
    """The same grid over the same settings always gets the same id, so a re-run finds it."""
    text = json.dumps([[c.name, c.config.to_dict()] for c in cells], sort_keys=True)
    return "sweep-" + hashlib.sha256(text.encode()).hexdigest()[:10]
