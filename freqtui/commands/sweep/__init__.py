"""`freqtui sweep`: a grid of ordinary sessions trained on Dask distributed.

Every cell (one combination of the grid's values and one torch seed) is a session in
`sessions/<sweep-id>/<cell>/`. The driver (this process) sends each cell's snapshot bytes
to a worker, which trains it for at most --snapshot-every seconds (engine/cells.py) and
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

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import resource
import signal
import statistics
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from engine import limits
from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.history import EvalRecord
from engine.store import lock
from engine.store.files import atomic_write_bytes, read
from engine.store.sessions import LATEST, PREVIOUS, sessions_dir, store
from engine.store.snapshot import Snapshot
from engine.store.writable import check_out

INSTALL_HINT = (
    "freqtui sweep needs Dask distributed, an optional extra: "
    "python -m pip install -e '.[sweep]' (or: python -m pip install distributed)"
)
SPEC = "sweep.json"
RESULTS = "results.json"
PLOT = "results.png"
PLAIN_EVERY_S = 5.0
STOP_WAIT_S = 600.0  # Ctrl-C: how long the driver waits for running cells to save
SNAPSHOT_EVERY_S = 60.0  # --snapshot-every's default
CONNECT_TIMEOUT_S = 30.0  # --connect-timeout's default
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SCHEMES = ("tcp", "tls")  # what --address may name
NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # a plain name: no path, not hidden


# ---- the grid --------------------------------------------------------------------------
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


def check_address(text: str) -> str:
    """--address: SCHEME://HOST:PORT with scheme tcp or tls (HOST:PORT means tcp)."""
    scheme, sep, loc = text.partition("://")
    if not sep:
        scheme, loc = "tcp", text
    why = ""
    if scheme not in SCHEMES:
        why = f"the scheme must be {' or '.join(s + '://' for s in SCHEMES)}"
    else:
        if loc.startswith("["):  # [::1]:8786
            host, _, rest = loc[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif ":" in loc:
            host, _, port = loc.rpartition(":")
        else:
            host, port = loc, ""
        if not host or re.search(r"[\s/@?#\[\]]", host):
            why = "no host"
        elif not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
            why = "no port in 1-65535"
    if why:
        raise FreqtuiError(
            f"--address {text[:80]!r}: {why}; expected tls://HOST:PORT or tcp://HOST:PORT"
        )
    return f"{scheme}://{loc}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def make_cells(
    grid: dict[str, list[str]],
    seeds: list[int],
    config_for: Callable[[dict[str, str], int], RunConfig],
) -> list[Cell]:
    """Every combination of the grid's values, for every seed, in the grid's order."""
    combos: list[dict[str, str]] = [{}]
    for key, vals in grid.items():
        combos = [{**c, key: v} for c in combos for v in vals]
    cells = []
    for combo in combos:
        for seed in seeds:
            pairs = [f"{_slug(k)}={_slug(v)}" for k, v in combo.items()]
            name = check_name("_".join([*pairs, f"seed={seed}"]), "--grid: cell", plain=False)
            cells.append(Cell(name, combo, seed, config_for(combo, seed)))
    return cells


def sweep_id(cells: list[Cell]) -> str:
    """The same grid over the same settings always gets the same id, so a re-run finds it."""
    text = json.dumps([[c.name, c.config.to_dict()] for c in cells], sort_keys=True)
    return "sweep-" + hashlib.sha256(text.encode()).hexdigest()[:10]


# ---- cells on disk ---------------------------------------------------------------------
@dataclass
class CellState:
    cell: Cell
    folder: Path
    snapshot: bytes | None = None
    finished: bool = False
    done_fraction: float = 0.0
    last_eval: EvalRecord | None = None
    rows_total: int = 0
    train_seconds: float = 0.0


def load_state(cell: Cell, folder: Path) -> CellState:
    """What the cell's folder holds: nothing yet, an interrupted snapshot or a finished one."""
    state = CellState(cell, folder)
    errors = []
    for name in (LATEST, PREVIOUS):
        path = folder / name
        if not path.is_file():
            continue
        try:
            snap = read(path)
        except FreqtuiError as exc:
            errors.append(str(exc))
            continue
        if snap.config.to_dict() != cell.config.to_dict():
            raise FreqtuiError(f"{path}: trained with other settings than cell {cell.name}")
        _fill(state, snap, path.read_bytes())
        return state
    if errors:
        raise FreqtuiError(f"cell {cell.name}: no readable snapshot ({errors[0]})")
    return state


def _fill(state: CellState, snap: Snapshot, data: bytes) -> None:
    state.snapshot = data
    # a clock plans its own length (its polish), at most --epochs
    state.finished = snap.finished
    total = snap.planned_epochs * snap.rows_per_epoch
    state.done_fraction = 1.0 if state.finished else snap.rows_done / total
    state.last_eval = snap.last_eval
    state.rows_total = snap.history.rows_total
    state.train_seconds = snap.history.train_seconds


def store_cell(state: CellState, data: bytes) -> None:
    """Write a cell's new snapshot (engine/store/sessions.py's `store`: the old one kept as
    previous.pt), then read it back: the checksum proves the bytes crossed the network
    whole."""
    _fill(state, read(store(state.folder, data)), data)


# ---- the worker side -------------------------------------------------------------------
def cell_task(
    config: dict[str, Any],
    cell: str,
    snapshot: bytes | None,
    budget_s: float,
    topic: str,
    stop_name: str,
    key: str,
):
    """Runs on a Dask worker: train the cell for a while, report progress as worker
    events on `topic` (each tagged with this stretch's `key`), stop early once the sweep's
    Event `stop_name` is set."""
    from distributed import Event, get_worker

    from engine.cells import train_cell

    worker = get_worker()
    worker.log_event(topic, {"cell": cell, "key": key, "started": True})
    stop = Event(stop_name)
    checked = [0.0, False]

    def should_stop() -> bool:
        now = time.monotonic()
        if not checked[1] and now - checked[0] >= 1.0:  # one scheduler round trip a second
            checked[0] = now
            checked[1] = bool(stop.is_set())
        return bool(checked[1])

    return train_cell(
        config,
        cell,
        snapshot,
        budget_s=budget_s,
        should_stop=should_stop,
        progress=lambda msg: worker.log_event(topic, {**msg, "key": key}),
    )


# ---- the driver ------------------------------------------------------------------------
def cmd_sweep(args, config_for: Callable[[dict[str, str], int], RunConfig]) -> int:
    try:
        import distributed  # noqa: F401
    except ImportError:
        sys.stderr.write(f"freqtui: {INSTALL_HINT}\n")
        return 2
    # every flag is checked before the first file is written
    limits.check_workers(args.workers)
    limits.check_seconds("--snapshot-every", args.snapshot_every, limits.MAX_SNAPSHOT_EVERY_S)
    limits.check_seconds("--connect-timeout", args.connect_timeout, limits.MAX_CONNECT_TIMEOUT_S)
    address = args.address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        args.address = check_address(address)
        _security_for(args.address)  # a tls:// address needs certificates in Dask's config
    grid = parse_grid(args.grid or [])
    seeds = parse_seeds(args.seeds)
    limits.check_sweep_size(grid_size(grid, seeds), "the grid times the seeds")
    cells = make_cells(grid, seeds, config_for)
    sid = check_name(args.name, "--name") if args.name else sweep_id(cells)
    root = sessions_dir(getattr(args, "sessions", None)) / sid
    for name in (SPEC, RESULTS, PLOT):
        check_out(root / name, f"the sweep's {name}", "the sweep's files")
    # a second identical sweep is refused here, naming this one's pid
    held = [lock.acquire(root)]
    spec = {
        "sweep": sid,
        "grid": grid,
        "seeds": seeds,
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
        code = _drive(args, sid, states, todo)
    write_results(root, sid, grid, seeds, states)
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


class _Stop(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM or SIGHUP) in the driver: stop like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, frame) -> None:
    raise _Stop(signum)


def dask_setup(worker) -> None:
    """Dask runs this (a preload) in each worker process of the sweep's own cluster, on
    its main thread: the worker ignores the stop signals. A terminal's Ctrl-C or hang-up
    reaches the whole process group, a service manager's SIGTERM every process; the
    driver asks the cells to stop and save instead, then closes the cluster."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def _stop_http(dask_scheduler=None, dask_worker=None) -> bool:
    """Close a node's HTTP server (Dask always starts one, for health checks and metrics):
    the sweep's cluster serves nothing over plain HTTP."""
    node = dask_scheduler or dask_worker
    server = getattr(node, "http_server", None)
    if server is not None:
        server.stop()
    return server is not None


def _security_for(address: str):
    """The Security of the user's Dask configuration, checked against the address."""
    from distributed.security import Security

    security = Security()
    if (
        address.startswith("tls://")
        and security.get_connection_args("client").get("ssl_context") is None
    ):
        raise FreqtuiError(
            f"--address {address}: a tls:// scheduler needs certificates in Dask's "
            "configuration (distributed.comm.tls.ca-file, distributed.comm.tls.client.cert "
            "and .key; see the README's Sweeps section)"
        )
    return security


def _probe(address: str, security, timeout: float) -> None:
    """Connect and finish Dask's handshake within `timeout` seconds, or say why not. (A
    listener that accepts and never answers would hold a Client forever: Dask bounds the
    connect but not the handshake's read.)"""
    from distributed.comm import connect

    async def handshake() -> None:
        comm = await connect(address, timeout=timeout, **security.get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(handshake(), timeout))
    except (asyncio.TimeoutError, TimeoutError):
        raise FreqtuiError(
            f"no Dask scheduler answered at {address} within {timeout:g} s (--connect-timeout)"
        ) from None
    except Exception as exc:  # refused, TLS refused, encryption required, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FreqtuiError(f"cannot reach the Dask scheduler at {address}: {first}") from None


def _cluster(args):
    """A Client on --address / $DASK_SCHEDULER_ADDRESS, or on a LocalCluster made here."""
    import dask
    from distributed import Client, LocalCluster

    timeout = float(getattr(args, "connect_timeout", CONNECT_TIMEOUT_S))
    address = args.address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        address = check_address(address)
        security = _security_for(address)
        _probe(address, security, timeout)
        try:
            client = Client(address, security=security, timeout=timeout)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise FreqtuiError(f"cannot reach the Dask scheduler at {address}: {first}") from None
        return client, None, f"cluster at {address}"
    n = args.workers or os.cpu_count() or 1
    # multiprocessing's resource tracker (a helper process the cluster's start would
    # launch) ignores SIGINT and SIGTERM itself but not SIGHUP: started here, it inherits
    # SIGHUP ignored and outlives a hung-up terminal until the driver has closed the cluster
    hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, hup)
    # a stop signal while the cluster starts is kept, and acted on once it is up
    came: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: came.append(signum)) for s in STOP_SIGNALS}
    # no HTTP routes in any node, and (below) no HTTP server left listening
    no_http = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}
    cluster = client = None
    try:
        try:
            with dask.config.set(no_http), warnings.catch_warnings():
                # the scheduler's HTTP server, closed below, first moves to a free port
                # when another cluster holds 8787, and would warn
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    security=True,  # TLS with certificates made for this cluster alone
                    dashboard_address=None,
                    worker_dashboard_address=None,
                    silence_logs=logging.ERROR,
                    preload=[__name__],  # dask_setup, in each worker process
                )
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
        if came:
            raise _Stop(came[0])
        client = Client(cluster)
        client.run_on_scheduler(_stop_http)
        client.run(_stop_http)
    except BaseException:  # a stop signal or a failure: nothing of the cluster stays
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        raise
    return client, cluster, f"local cluster of {n} worker process(es)"


class _Progress:
    """One line per running cell and a total line: rich on a terminal, plain otherwise."""

    def __init__(self, total: int, states: list[CellState]) -> None:
        self.total = total
        self.states = {s.cell.name: s for s in states}
        self.lines: dict[str, dict[str, Any]] = {}
        self.running: set[str] = set()
        self.started: set[str] = set()  # keys of the stretches a worker has begun
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.start_fraction = self.fraction()
        self.live = None
        self.last_plain = 0.0
        if sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(refresh_per_second=4, transient=True)
            self.live.start()

    def on_event(self, event) -> None:  # Dask calls this on its own thread
        _, msg = event
        with self.lock:
            self.started.add(msg["key"])
            if "epoch" in msg:
                self.lines[msg["cell"]] = msg

    def fraction(self) -> float:
        parts = []
        for name, s in self.states.items():
            msg = self.lines.get(name) if name in self.running else None
            if msg and not s.finished:
                rpe = msg["rows_per_epoch"]
                parts.append(((msg["epoch"] - 1) * rpe + msg["row"]) / max(1, msg["epochs"] * rpe))
            else:
                parts.append(s.done_fraction)
        return sum(parts) / max(1, len(parts))

    def total_line(self) -> str:
        done = sum(1 for s in self.states.values() if s.finished)
        frac = self.fraction()
        gained = frac - self.start_fraction
        elapsed = time.monotonic() - self.t0
        eta = elapsed * (1 - frac) / gained if gained > 1e-9 else math.inf
        return (
            f"cells done {done}/{self.total}  ({100 * frac:.0f}% of the rows)  "
            f"elapsed {_fmt(elapsed)}  ETA {_fmt(eta)}"
        )

    def cell_lines(self) -> list[str]:
        out = []
        with self.lock:
            for name in sorted(self.running):
                m = self.lines.get(name)
                if m is None:
                    out.append(f"  {name}: starting")
                    continue
                out.append(
                    f"  {name}: epoch {m['epoch']}/{m['epochs']} row {m['row']:,}/"
                    f"{m['rows_per_epoch']:,}  {m['rows_per_s']:,.0f} rows/s  online loss "
                    f"(weights moving) {m['online_loss']:.4f}  cell ETA {_fmt(m['eta_s'])}"
                )
        return out

    def say(self, line: str) -> None:
        if self.live is not None:
            self.live.console.print(line)
        else:
            print(line, flush=True)

    def refresh(self) -> None:
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text("\n".join([*self.cell_lines(), self.total_line()])))
        elif time.monotonic() - self.last_plain >= PLAIN_EVERY_S:
            self.last_plain = time.monotonic()
            for line in [*self.cell_lines(), self.total_line()]:
                print(line, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def _fmt(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    s = int(s)
    return (
        f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )


def _drive(args, sid: str, states: list[CellState], todo: list[CellState]) -> int:
    from distributed import Event

    # SIGINT, SIGTERM and SIGHUP all stop the sweep the same way (main thread only), from
    # the cluster's start on (the worker processes start with them ignored)
    old_handlers = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        client, cluster, where = _cluster(args)
    except _Stop as exc:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        print(
            f"stopped by {signal.Signals(exc.signum).name} while the cluster started: "
            "nothing was trained; run the same command again to start"
        )
        return 128 + exc.signum
    except BaseException:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        raise
    token = uuid.uuid4().hex[:8]
    topic, stop_name = f"freqtui-{sid}-{token}", f"freqtui-stop-{sid}-{token}"
    progress = _Progress(len(states), states)
    client.subscribe_topic(topic, progress.on_event)
    progress.say(f"training {len(todo)} cell(s) on the {where}")
    futures: dict[Any, CellState] = {}
    chunks = {s.cell.name: 0 for s in todo}

    def submit(s: CellState) -> None:
        chunks[s.cell.name] += 1
        key = f"freqtui-{s.cell.name}-{token}-{chunks[s.cell.name]}"
        fut = client.submit(
            cell_task,
            s.cell.config.to_dict(),
            s.cell.name,
            s.snapshot,
            float(args.snapshot_every),
            topic,
            stop_name,
            key,
            key=key,
            pure=False,
        )
        futures[fut] = s

    def collect(fut, s: CellState, stopping: bool) -> str | None:
        """Store a returned stretch; None, or the failure's message."""
        progress.running.discard(s.cell.name)
        try:
            chunk = fut.result()
        except Exception as exc:  # a worker error: say which cell, keep the others going
            first = (str(exc).strip().splitlines() or [""])[0]
            return f"{type(exc).__name__}: {first}"
        if chunk.failed:
            return chunk.failed
        if chunk.snapshot is not None and chunk.snapshot != s.snapshot:
            try:
                store_cell(s, chunk.snapshot)
            except FreqtuiError as exc:  # a full disk, a read-only folder: this cell stops
                return str(exc)
        trained[0] += chunk.rows  # rows on disk
        if s.finished:
            lock.release(s.folder)  # a finished cell is anyone's to read or resume
            test = s.last_eval.test.overall if s.last_eval else float("nan")
            done = sum(1 for x in states if x.finished)
            progress.say(
                f"cell {s.cell.name} finished: frozen MSE test {test:.4f} "
                f"({done}/{len(states)} cells done)"
            )
        elif not stopping:
            submit(s)
        return None

    failures: dict[str, str] = {}
    stopping = False
    signum = 0
    trained = [0]  # rows trained by this run, all cells
    watch = _WorkerWatch()
    try:
        for s in todo:
            submit(s)
        while futures:
            for fut in [f for f in futures if f.done()]:
                s = futures.pop(fut)
                error = collect(fut, s, stopping)
                if error:
                    failures[s.cell.name] = error
                    progress.say(f"cell {s.cell.name} failed: {error}")
            with progress.lock:  # the cells whose current stretch a worker has begun
                progress.running = {
                    s.cell.name for f, s in futures.items() if f.key in progress.started
                }
            progress.refresh()
            watch(client, progress.say)
            time.sleep(0.25)
    except KeyboardInterrupt as exc:
        stopping = True
        signum = exc.signum if isinstance(exc, _Stop) else signal.SIGINT
        how = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        progress.say(
            f"stopping ({how}): the running cells save their snapshots (Ctrl-C again: leave now)"
        )
        try:
            Event(stop_name, client=client).set()
            # a stretch no worker has begun has nothing to save: cancel it (one that begins
            # anyway sees the stop first and returns at once)
            with progress.lock:
                waiting = [f for f in futures if f.key not in progress.started]
            if waiting:
                client.cancel(waiting)
                for f in waiting:
                    futures.pop(f)
            deadline = time.monotonic() + STOP_WAIT_S
            while futures and time.monotonic() < deadline:
                for fut in [f for f in futures if f.done()]:
                    s = futures.pop(fut)
                    error = collect(fut, s, stopping)
                    if error:
                        failures[s.cell.name] = error
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    finally:
        # after a stop, a late signal must not cut the saving and the report short
        for sig, handler in old_handlers.items():
            signal.signal(sig, signal.SIG_IGN if stopping else handler)
        progress.close()
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
    print(f"this run trained {trained[0]:,} rows in {_fmt(time.monotonic() - progress.t0)}")
    for name, error in failures.items():
        sys.stderr.write(f"freqtui: cell {name} failed: {error}\n")
    if stopping:
        left = sum(1 for s in states if not s.finished)
        print(f"stopped: {left} cell(s) not finished; run the same command again to continue")
        return 128 + signum
    return 1 if failures else 0


class _WorkerWatch:
    """Says so, once a minute, while the cluster has no worker at all (they died, or the
    cluster has not started them yet): the cells wait for one."""

    def __init__(self) -> None:
        self.checked = 0.0
        self.empty_since: float | None = None
        self.said = 0.0

    def __call__(self, client, say: Callable[[str], None]) -> None:
        now = time.monotonic()
        if now - self.checked < 5.0:
            return
        self.checked = now
        try:
            workers = len(client.nthreads())
        except Exception:  # the scheduler is busy or gone: the next look tells
            return
        if workers:
            self.empty_since = None
            return
        if self.empty_since is None:
            self.empty_since = self.said = now
        elif now - self.said >= 60.0:
            self.said = now
            say(
                f"no Dask workers for {_fmt(now - self.empty_since)}: the cells wait for one "
                "(start `dask worker ADDRESS`, or Ctrl-C to stop)"
            )


# ---- results ---------------------------------------------------------------------------
def _stats(values: list[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def results(sid: str, grid: dict[str, list[str]], seeds: list[int], states: list[CellState]):
    """results.json's content: every cell's latest frozen MSE and, per grid combination,
    min / median / max / mean / std of frozen MSE_test over the finished seeds."""
    cells = []
    groups: dict[str, dict[str, Any]] = {}
    for s in states:
        last = s.last_eval
        freqs = list(s.cell.config.frequencies)
        cells.append(
            {
                "cell": s.cell.name,
                "values": s.cell.values,
                "seed": s.cell.seed,
                "method": s.cell.config.method,
                "session": str(s.folder),
                "finished": s.finished,
                "rows_total": s.rows_total,
                "train_seconds": s.train_seconds,
                "frozen_mse_train": last.train.to_dict() if last else None,
                "frozen_mse_test": last.test.to_dict() if last else None,
            }
        )
        key = json.dumps(s.cell.values, sort_keys=False)
        g = groups.setdefault(
            key,
            {
                "values": s.cell.values,
                "method": s.cell.config.method,
                "frequencies": freqs,
                "seeds": [],
                "_tests": [],
            },
        )
        if s.finished and last:
            g["seeds"].append(s.cell.seed)
            g["_tests"].append([last.test.overall, *last.test.per_block])
    out_groups = []
    for g in groups.values():
        tests = g.pop("_tests")
        labels = ["overall"] + [f"f={f:g} Hz" for f in g["frequencies"]]
        g["frozen_mse_test"] = (
            {label: _stats([t[i] for t in tests]) for i, label in enumerate(labels)}
            if tests
            else None
        )
        out_groups.append(g)
    return {
        "sweep": sid,
        "kind": "frozen_mse",
        "grid": grid,
        "seeds": seeds,
        "cells": cells,
        "groups": out_groups,
    }


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


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def results_png(data: dict[str, Any]) -> bytes:
    """Frozen MSE_test (overall) against each swept value, one line per method (and per
    combination of the other swept values), median line and min-max band over seeds."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in data["grid"] if k != "method"] or list(data["grid"]) or ["method"]
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4.8), squeeze=False)
    groups = [g for g in data["groups"] if g["frozen_mse_test"]]
    for ax, key in zip(axes[0], keys, strict=True):
        values = data["grid"].get(key) or sorted({g["method"] for g in groups})
        numeric = all(_num(v) is not None for v in values)
        pos = {v: (_num(v) if numeric else i) for i, v in enumerate(values)}
        lines: dict[str, list[tuple[float, dict[str, float]]]] = {}
        for g in groups:
            x = g["values"].get(key, g["method"])
            others = [f"{k}={v}" for k, v in g["values"].items() if k not in (key, "method")]
            label = " ".join([g["method"], *others])
            lines.setdefault(label, []).append((pos[x], g["frozen_mse_test"]["overall"]))
        for label, pts in sorted(lines.items()):
            pts.sort(key=lambda p: p[0])
            xs = [p[0] for p in pts]
            (line,) = ax.plot(xs, [p[1]["median"] for p in pts], "o-", label=label)
            ax.fill_between(
                xs,
                [p[1]["min"] for p in pts],
                [p[1]["max"] for p in pts],
                color=line.get_color(),
                alpha=0.2,
            )
        ax.set_yscale("log")
        positive = numeric and all(v > 0 for v in pos.values())
        if positive and max(pos.values()) / min(pos.values()) >= 20:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(list(pos.values()), list(pos))
        ax.set_xlabel(key)
        ax.set_ylabel("frozen MSE_test (log scale)")
        ax.set_title(f"frozen MSE_test vs {key}: median, band = min-max over seeds", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        if lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"sweep {data['sweep']}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_results(root: Path, sid, grid, seeds, states: list[CellState]) -> None:
    data = results(sid, grid, seeds, states)
    print(results_table(data))
    _write(root / RESULTS, (json.dumps(data, indent=2) + "\n").encode())
    if any(g["frozen_mse_test"] for g in data["groups"]):
        _write(root / PLOT, results_png(data))


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise FreqtuiError(f"{path}: not written ({exc.strerror or exc})") from None
    print(f"wrote {path}")
