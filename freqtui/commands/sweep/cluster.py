"""The Dask cluster a sweep trains on: a Client on --address (or
$DASK_SCHEDULER_ADDRESS), with the security of Dask's configuration and a bounded
handshake, or a LocalCluster made for the sweep: one single-threaded worker process per
core, on 127.0.0.1, behind Dask's own TLS (`security=True`: certificates made for this
sweep), with no HTTP server at all, its workers deaf to the stop signals (the driver
asks the cells to stop and save instead)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import warnings
from collections.abc import Iterator
from multiprocessing import resource_tracker

from engine.errors import FreqtuiError

CONNECT_TIMEOUT_S = 30.0  # --connect-timeout's default
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SCHEMES = ("tcp", "tls")  # what --address may name


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


class Stop(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM or SIGHUP) in the driver: stop like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Hold:
    """How deep the driver is in `stop_held`, and the stop signal that came meanwhile."""

    depth = 0
    pending = 0


def raise_stop(signum: int, frame) -> None:
    """The driver's handler of the stop signals: Stop at once, or at the end of a
    `stop_held` block that is under way."""
    if _Hold.depth:
        _Hold.pending = _Hold.pending or signum
        return
    raise Stop(signum)


@contextlib.contextmanager
def stop_held() -> Iterator[None]:
    """A stop signal that comes inside is raised (Stop) at the end: the step inside is done
    whole. The driver stores a returned cell's snapshot and counts its rows in one, so a
    signal between the two can no longer leave rows on disk that the run's count lacks.
    Python runs signal handlers on the main thread only, where the driver is."""
    _Hold.depth += 1
    try:
        yield
    finally:
        _Hold.depth -= 1
        if not _Hold.depth and _Hold.pending:
            signum, _Hold.pending = _Hold.pending, 0
            raise Stop(signum)


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


def security_for(address: str):
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


def start_client(
    address: str | None, workers: int | None = None, timeout: float = CONNECT_TIMEOUT_S
):
    """A Client on the scheduler at `address` (within `timeout` seconds), or, without one,
    on a LocalCluster of `workers` processes (default: one per core) made here; and the
    cluster to close (None for `address`'s) and a few words saying where."""
    import dask
    from distributed import Client, LocalCluster

    timeout = float(timeout)
    if address:
        address = check_address(address)
        security = security_for(address)
        _probe(address, security, timeout)
        try:
            client = Client(address, security=security, timeout=timeout)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise FreqtuiError(f"cannot reach the Dask scheduler at {address}: {first}") from None
        return client, None, f"cluster at {address}"
    n = workers or os.cpu_count() or 1
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
            raise Stop(came[0])
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
