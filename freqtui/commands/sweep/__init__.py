"""`freqtui sweep`: a grid of ordinary sessions trained on Dask distributed.

Every cell (one combination of the grid's values and one torch seed) is a session in
`sessions/<sweep-id>/<cell>/`. The driver (this process) sends each cell's snapshot bytes
to a worker, which trains it for at most --snapshot-every seconds (engine/sweep/cell.py) and
returns the new snapshot's bytes; the driver writes them atomically into the cell's folder
and sends the cell out again until it has finished. Workers therefore need no shared disk,
and the newest snapshot of every cell is on the driver's disk at most one stretch old: a
re-run skips finished cells and continues the others from their snapshots.

The cluster is a LocalCluster started for the sweep unless --address or
$DASK_SCHEDULER_ADDRESS names one: one single-threaded worker process per core, on
127.0.0.1, behind Dask's own TLS (`security=True`: certificates made for this sweep, so a
client without them is refused), with no HTTP server at all. --address connects with
the security Dask's configuration gives (a tls:// cluster's certificates), within
--connect-timeout seconds.

A sweep is a good citizen of the sessions folder: it holds the session lock on its own
folder (a second identical sweep is refused) and on every cell it has not finished (a
`train --resume` of a cell is refused while the sweep runs); SIGINT, SIGTERM and SIGHUP
all stop it the same way: every running cell saves, exit 128 + the signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from engine import limits
from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.store import lock
from engine.store.files import atomic_write_bytes
from engine.store.sessions import sessions_dir
from engine.store.writable import check_out
from engine.sweep.grid import (
    Axis,
    check_name,
    grid_of,
    grid_size,
    make_cells,
    parse_seeds,
    sweep_id,
)
from engine.sweep.results import results
from engine.sweep.state import CellState, load_state
from freqtui.commands.sweep.cluster import CONNECT_TIMEOUT_S, check_address, security_for
from freqtui.commands.sweep.driver import SNAPSHOT_EVERY_S, drive

INSTALL_HINT = (
    "freqtui sweep needs Dask distributed and cryptography (for its TLS), an optional "
    "extra: python -m pip install -e '.[sweep]' (or: python -m pip install distributed "
    "cryptography)"
)
SPEC = "sweep.json"
RESULTS = "results.json"
PLOT = "results.png"


def sweep(
    base: RunConfig,
    axes: list[Axis],
    seeds: str,
    *,
    given: Collection[str] = (),
    sessions: Path | None = None,
    name: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    snapshot_every: float = SNAPSHOT_EVERY_S,
) -> int:
    """`freqtui sweep`: every cell of `axes` times `seeds` (`0-4`), each the `base`
    config with the cell's values (engine/sweep/grid.py; `given`: the fields the sweep's
    flags set), trained on the cluster at `address` (else $DASK_SCHEDULER_ADDRESS, else a
    local one of `workers` processes) into `sessions/<name or the sweep's id>/`."""
    # every flag is checked before the first file is written, and those that need no
    # Dask before Dask is imported (half a second: a typo is refused at once)
    limits.check_workers("--workers", workers)
    limits.check_seconds("--snapshot-every", snapshot_every, limits.MAX_SNAPSHOT_EVERY_S)
    limits.check_seconds("--connect-timeout", connect_timeout, limits.MAX_CONNECT_TIMEOUT_S)
    grid = grid_of(axes)
    seed_list = parse_seeds(seeds)
    limits.check_sweep_size(grid_size(grid, seed_list), "the grid times the seeds")
    cells = make_cells(axes, seed_list, base, given)
    sid = check_name(name, "--name") if name else sweep_id(cells)
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        address = check_address(address)
    try:
        import cryptography  # noqa: F401  (Dask's TLS: the local cluster's certificates)
        import distributed  # noqa: F401
    except ImportError:
        sys.stderr.write(f"freqtui: {INSTALL_HINT}\n")
        return 2
    if address:
        security_for(address)  # a tls:// address needs certificates in Dask's config
    root = sessions_dir(sessions) / sid
    for name in (SPEC, RESULTS, PLOT):
        check_out(root / name, f"the sweep's {name}", "the sweep's files")
    # a second identical sweep is refused here, naming this one's pid
    held = [lock.acquire(root)]
    spec = {
        "sweep": sid,
        "grid": grid,
        "seeds": seed_list,
        "cells": [{"cell": c.name, **c.values, "seed": c.seed} for c in cells],
        "configs": {c.name: c.config.to_dict() for c in cells},
    }
    old = root / SPEC
    if old.is_file():
        try:
            same = json.loads(old.read_text()).get("configs") == spec["configs"]
        except (OSError, ValueError):
            same = False
        if not same:
            raise FreqtuiError(
                f"{root}: holds a sweep with another grid or settings; pick another --name"
            )
    _open_files_for(len(cells))
    # own every cell before reading it: a `train --resume` of a cell now is refused, and
    # a cell another process is training is refused here (the finished are let go below)
    held += [lock.acquire(root / c.name) for c in cells]
    states = [load_state(c, root / c.name) for c in cells]
    for s in states:
        if s.finished:
            lock.release(s.folder)
    atomic_write_bytes(old, (json.dumps(spec, indent=2) + "\n").encode())
    todo = [s for s in states if not s.finished]
    print(
        f"sweep {sid}: {len(cells)} cells ({len(cells) - len(todo)} finished already, "
        f"{sum(1 for s in todo if s.snapshot)} to continue, "
        f"{sum(1 for s in todo if not s.snapshot)} new) in {root}",
        flush=True,
    )
    code = 0
    if todo:
        code = drive(
            sid,
            states,
            todo,
            address=address,
            workers=workers,
            connect_timeout=connect_timeout,
            snapshot_every=snapshot_every,
        )
    write_results(root, sid, grid, seed_list, states)
    if code == 1:  # the last line never reads as if all were well
        left = sum(1 for s in states if not s.finished)
        print(
            f"sweep {sid}: {left} cell(s) not finished, some failed (see stderr); fix the "
            "cause and run the same command again to continue them from their snapshots"
        )
    for h in held:
        h.release()
    return code


def _open_files_for(cells: int) -> None:
    """Each cell's lock is an open file: make room for them beside Dask's sockets."""
    want = cells + 512
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            top = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def results_table(data: dict[str, Any]) -> str:
    keys = list(data["grid"])
    widths = [max(len(k), *(len(g["values"][k]) for g in data["groups"])) for k in keys]
    head = "  ".join(f"{k:{w}}" for k, w in zip(keys, widths, strict=True))
    lines = [
        f"sweep {data['sweep']}: frozen MSE_test (weights fixed) over the finished seeds",
        f"{head}{'  ' if keys else ''}{'seeds':10}{'frequency':10}"
        f"{'min':>9}{'median':>9}{'max':>9}   mean ± std",
    ]
    for g in data["groups"]:
        vals = "  ".join(f"{g['values'][k]:{w}}" for k, w in zip(keys, widths, strict=True))
        pad = " " * len(vals)
        sep = "  " if keys else ""
        seeds = _seeds_text(g["seeds"]) or "none"
        stats = g["frozen_mse_test"]
        if not stats:
            lines.append(f"{vals}{sep}{seeds:10}(no finished seed yet)")
            continue
        for i, (label, st) in enumerate(stats.items()):
            lead = f"{vals}{sep}{seeds:10}" if i == 0 else f"{pad}{sep}{'':10}"
            lines.append(
                f"{lead}{label:10}{st['min']:9.4f}{st['median']:9.4f}{st['max']:9.4f}   "
                f"{st['mean']:.4f} ± {st['std']:.4f}"
            )
    unfinished = [c["cell"] for c in data["cells"] if not c["finished"]]
    if unfinished:
        lines.append(f"not finished ({len(unfinished)}): {', '.join(unfinished)}")
    return "\n".join(lines)


def _seeds_text(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def write_results(
    root: Path, sid: str, grid: dict[str, list[str]], seeds: list[int], states: list[CellState]
) -> None:
    data = results(sid, grid, seeds, states)
    print(results_table(data))
    _write(root / RESULTS, (json.dumps(data, indent=2) + "\n").encode())
    if any(g["frozen_mse_test"] for g in data["groups"]):
        from freqtui.charts import sweep_png  # numpy and matplotlib: not for `--help`

        _write(root / PLOT, sweep_png(data))


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise FreqtuiError(f"{path}: not written ({exc.strerror or exc})") from None
    print(f"wrote {path}")
