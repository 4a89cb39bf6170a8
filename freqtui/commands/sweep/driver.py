"""A sweep's driver: sends each unfinished cell's snapshot to a Dask worker
(engine/sweep/cell.py's `cell_task` trains it for at most --snapshot-every seconds),
stores each returned snapshot in the cell's folder and sends the cell out again until it
has finished. SIGINT, SIGTERM and SIGHUP all stop it the same way: the running cells save,
exit 128 + the signal."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from engine.errors import FreqtuiError
from engine.limits import STOP_WAIT_S
from engine.store import lock
from engine.sweep.state import CellState, store_cell
from freqtui.commands.sweep.cluster import (
    STOP_SIGNALS,
    Stop,
    raise_stop,
    start_client,
    stop_held,
)
from freqtui.commands.sweep.progress import Progress, fmt_clock

SNAPSHOT_EVERY_S = 60.0  # --snapshot-every's default


def drive(
    sid: str,
    states: list[CellState],
    todo: list[CellState],
    *,
    address: str | None,
    workers: int | None,
    connect_timeout: float,
    snapshot_every: float,
) -> int:
    """Train the cells `todo` (of all the sweep's `states`) to their end on the cluster
    (cluster.py's `start_client`); the exit code: 0, 1 (some failed) or 128 + a stop
    signal."""
    # SIGINT, SIGTERM and SIGHUP all stop the sweep the same way (main thread only), from
    # the moment the sweep said what it will train (the line before this call) on, the
    # imports of Dask and the cluster's start included (the worker processes start with
    # them ignored)
    old_handlers = {sig: signal.signal(sig, raise_stop) for sig in STOP_SIGNALS}
    try:
        from distributed import Event

        from engine.sweep.cell import cell_task

        client, cluster, where = start_client(address, workers, connect_timeout)
    except Stop as exc:
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
    progress = Progress(len(states), states)
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
            float(snapshot_every),
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
                with stop_held():  # stored, counted and sent out again, or a signal waits
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
        signum = exc.signum if isinstance(exc, Stop) else signal.SIGINT
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
                    with stop_held():  # a second signal leaves after this cell is stored
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
    print(f"this run trained {trained[0]:,} rows in {fmt_clock(time.monotonic() - progress.t0)}")
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
                f"no Dask workers for {fmt_clock(now - self.empty_since)}: the cells wait for one "
                "(start `dask worker ADDRESS`, or Ctrl-C to stop)"
            )
