"""`freqtui sweep` as a user runs it: a local Dask cluster by default, a separate
`dask scheduler` + `dask worker`s with --address; every cell an ordinary session; re-runs
skip finished cells and continue interrupted ones. Every process talks over 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import FreqtuiError
from engine.store.files import read_file

CLI = [sys.executable, "-m", "freqtui.cli"]
# the sweep, on a 0.1 s signal (100 rows a block, 800 rows a cell) so that a test
# takes seconds (most of a sweep's time is its cluster's start: 12 s against 15 s at 0.25 s)
GRID = ["--grid", "method=handoff,tbptt", "--grid", "phase-scale=1,0.01", "--seeds", "0-1"]
FLAGS = ["--duration", "0.1", "--epochs", "2", "--backend", "torch"]
CELLS = 8
TOL = 1e-6  # the bound; cells are deterministic, so equal runs agree exactly


def sweep(sessions: Path, *extra: str, timeout: float = 600, **kw):
    return subprocess.run(
        [*CLI, "sweep", *GRID, *FLAGS, "--sessions", str(sessions), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kw,
    )


def sweep_dir(sessions: Path) -> Path:
    (found,) = [d for d in sessions.iterdir() if d.name.startswith("sweep-")]
    return found


def cell_results(sessions: Path) -> dict[str, dict]:
    data = json.loads((sweep_dir(sessions) / "results.json").read_text())
    return {c["cell"]: c for c in data["cells"]}


def assert_same_results(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert set(a) == set(b) and len(a) == CELLS
    for cell in a:
        assert a[cell]["finished"] and b[cell]["finished"]
        assert a[cell]["rows_total"] == b[cell]["rows_total"]
        for s in ("frozen_mse_train", "frozen_mse_test"):
            x, y = a[cell][s], b[cell][s]
            assert abs(x["overall"] - y["overall"]) <= TOL, (cell, s)
            for u, v in zip(x["per_frequency"], y["per_frequency"], strict=True):
                assert abs(u - v) <= TOL, (cell, s)


def trained_rows(stdout: str) -> int:
    found = re.search(r"this run trained ([\d,]+) rows", stdout)
    assert found, stdout
    return int(found.group(1).replace(",", ""))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep run once, uninterrupted, on the default local cluster."""
    sessions = tmp_path_factory.mktemp("reference") / "sessions"
    r = sweep(sessions, "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    return sessions, r


@pytest.mark.slow
def test_local_sweep_writes_sessions_results_and_a_rerun_trains_nothing(reference):
    sessions, r = reference
    root = sweep_dir(sessions)
    assert f"{CELLS} cells (0 finished already, 0 to continue, {CELLS} new)" in r.stdout
    assert "local cluster of 2 worker process(es)" in r.stdout
    results = json.loads((root / "results.json").read_text())
    assert len(results["cells"]) == CELLS and len(results["groups"]) == 4
    for c in results["cells"]:  # each cell is an ordinary session: its snapshot says so
        snap = read_file(Path(c["session"]) / "latest.pt")
        assert snap["run_id"] == c["cell"] and snap["trainer"]["epoch"] == 2
        assert snap["history"]["evals"][-1]["test"] == c["frozen_mse_test"]
        assert snap["config"].torch_seed == c["seed"]
        assert snap["config"].method == c["values"]["method"]
        assert snap["config"].phase_scale == float(c["values"]["phase-scale"])
    for g in results["groups"]:  # the table's statistics are those of the two seeds
        tests = [
            c["frozen_mse_test"]["overall"] for c in results["cells"] if c["values"] == g["values"]
        ]
        st = g["frozen_mse_test"]["overall"]
        assert g["seeds"] == [0, 1]
        assert st["min"] == min(tests) and st["max"] == max(tests)
        assert st["median"] == pytest.approx(sum(tests) / 2, rel=1e-12)
        line = next(x for x in r.stdout.splitlines() if x.startswith(g["values"]["method"]))
        assert "overall" in line or "f=" in line
    assert f"{st['min']:.4f}" in r.stdout
    assert (root / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert trained_rows(r.stdout) == sum(c["rows_total"] for c in results["cells"])

    before = {p: p.read_bytes() for p in root.glob("*/latest.pt")}
    again = sweep(sessions)
    assert again.returncode == 0, again.stderr
    assert f"{CELLS} cells ({CELLS} finished already, 0 to continue, 0 new)" in again.stdout
    assert "training" not in again.stdout and "this run trained" not in again.stdout
    assert {p: p.read_bytes() for p in root.glob("*/latest.pt")} == before
    assert r.stdout.split("frozen MSE_test (weights fixed)")[1].split("wrote")[0] in again.stdout


def finished(path: Path) -> bool | None:
    try:
        snap = read_file(path)
    except FreqtuiError:
        return None
    return snap["trainer"]["epoch"] >= snap["config"].epochs


@pytest.mark.slow
def test_a_killed_sweep_finishes_only_what_was_left(tmp_path, reference):
    sessions = tmp_path / "sessions"
    proc = subprocess.Popen(
        [*CLI, "sweep", *GRID, *FLAGS, "--sessions", str(sessions)]
        # a cell trains for about a second: it sends its snapshot back five times
        + ["--workers", "1", "--snapshot-every", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            states = [finished(p) for p in sessions.glob("sweep-*/*/latest.pt")]
            if states.count(True) >= 2 and states.count(False) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    root = sweep_dir(sessions)
    done_before = {p: p.read_bytes() for p in root.glob("*/latest.pt") if finished(p)}
    rows_before = sum(read_file(p)["history"]["rows_total"] for p in root.glob("*/latest.pt"))
    partial = len(list(root.glob("*/latest.pt"))) - len(done_before)
    assert done_before and partial

    r = sweep(sessions, "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    new = CELLS - len(done_before) - partial
    assert f"({len(done_before)} finished already, {partial} to continue, {new} new)" in r.stdout
    for p, data in done_before.items():
        assert p.read_bytes() == data  # finished cells are not touched
    results = cell_results(sessions)
    # only the rows not yet on disk were trained, and the results are the uninterrupted run's
    assert trained_rows(r.stdout) == sum(c["rows_total"] for c in results.values()) - rows_before
    assert_same_results(results, cell_results(reference[0]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_cli() -> list[str]:
    beside = Path(sys.executable).with_name("dask")
    return [str(beside)] if beside.exists() else [shutil.which("dask") or "dask"]


@pytest.mark.slow
def test_a_sweep_on_a_separate_dask_cluster_matches_the_local_run(tmp_path, reference):
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []

    def start(name, *args):
        with open(logs / f"{name}.log", "w") as out:
            procs.append(subprocess.Popen([*dask_cli(), *args], stdout=out, stderr=out))

    try:
        # --no-dashboard still leaves a small HTTP server (health checks), on 0.0.0.0
        # unless --dashboard-address says otherwise: everything here stays on loopback
        http = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), *http)
        for i in range(2):
            start(
                f"worker{i}",
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                *http,
            )
        client = None
        deadline = time.monotonic() + 120
        while client is None:
            try:
                client = Client(address, timeout=5)
            except OSError:
                assert time.monotonic() < deadline, (logs / "scheduler.log").read_text()
                time.sleep(0.5)
        with client:
            client.wait_for_workers(2, timeout=120)
            workers = client.scheduler_info()["workers"]
            assert len(workers) == 2
            for addr, info in workers.items():  # loopback only, workers and their nannies
                assert addr.startswith("tcp://127.0.0.1:")
                assert info["nanny"].startswith("tcp://127.0.0.1:")

            # and their HTTP servers (health checks) too; a local function travels by value
            def http_host(dask_scheduler=None, dask_worker=None) -> str:
                return (dask_scheduler or dask_worker).http_server.address

            assert client.run_on_scheduler(http_host) == "127.0.0.1"
            assert set(client.run(http_host).values()) == {"127.0.0.1"}
        sessions = tmp_path / "sessions"
        r = sweep(sessions, "--address", address)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"cluster at {address}" in r.stdout
        assert_same_results(cell_results(sessions), cell_results(reference[0]))
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.mark.parametrize("missing", ["distributed", "cryptography"])
def test_without_distributed_sweep_says_how_to_install(tmp_path, missing):
    # cryptography: Dask needs it for the local cluster's TLS (a fresh venv without it
    # once failed every sweep with a traceback)
    fake = tmp_path / "fake"
    (fake / missing).mkdir(parents=True)
    (fake / missing / "__init__.py").write_text(f"raise ImportError('no {missing} here')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]),
    }
    r = subprocess.run(
        [*CLI, "sweep", "--grid", "method=handoff", "--sessions", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "pip install -e '.[sweep]'" in r.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--grid", "seed=1,2"], "--seeds"),
        (["--grid", "method"], "KEY=V1,V2"),
        (["--grid", "method=handoff,nope"], "nope"),
        (["--grid", "phase-scale=1,x"], "phase-scale"),
        (["--seeds", "3-1"], "--seeds"),
    ],
)
def test_a_bad_grid_is_one_line_and_exit_2(tmp_path, args, words):
    r = subprocess.run(
        [*CLI, "sweep", *args, "--sessions", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stdout
    assert r.stderr.count("\n") == 1 and words in r.stderr, r.stderr


@pytest.mark.slow
def test_ctrl_c_stops_the_cells_and_each_saves_its_snapshot(tmp_path):
    sessions = tmp_path / "sessions"
    log = tmp_path / "out.log"
    # an in-process headless run earlier in this pytest process leaves SIGINT ignored
    # (freqtui/shutdown.py), and a child would inherit that: hand it Python's own handler
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*CLI, "sweep", "--grid", "method=handoff,tbptt", "--seeds", "0-1"]
            # 20 epochs (about 70 s a handoff cell here): Ctrl-C comes long before a cell
            # could finish, even on a loaded machine (with 3 epochs, 10 s, a saved cell once
            # fell outside the bound below under load)
            + ["--duration", "1", "--epochs", "20", "--backend", "torch"]
            + ["--sessions", str(sessions), "--workers", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a terminal's Ctrl-C reaches the whole group
        )
        signal.signal(signal.SIGINT, old)
        deadline = time.monotonic() + 300
        # both running cells are training (one still starting its worker would stop
        # with no row trained)
        while not all(
            re.search(rf"method=handoff_seed={seed}: .* rows/s ", log.read_text())
            for seed in (0, 1)
        ):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(120) == 130, log.read_text()
    text = log.read_text()
    assert "stopping (Ctrl-C): the running cells save their snapshots" in text
    snaps = [read_file(p) for p in sessions.glob("sweep-*/*/latest.pt")]
    assert snaps, text
    assert all(0 < s["history"]["rows_total"] < 20 * 4_000 for s in snaps)
    # what the cells trained up to Ctrl-C is on disk, nothing lost
    assert trained_rows(text) == sum(s["history"]["rows_total"] for s in snaps)
    # no worker process left behind (multiprocessing's resource tracker takes a moment)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("processes of the sweep are still running after 30 s")


@pytest.mark.slow
def test_the_default_local_cluster_listens_on_loopback_only_behind_tls_and_serves_no_http():
    from distributed import Client

    from freqtui.commands.sweep.cluster import start_client

    client, cluster, where = start_client(None, workers=2)
    try:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        # the HTTP server Dask always starts (health checks, metrics) is closed
        http_port = cluster.scheduler.http_server.port
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", http_port), timeout=5).close()
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2 and where == "local cluster of 2 worker process(es)"
        addresses = [cluster.scheduler_address]
        for addr, info in workers.items():
            assert addr.startswith("tls://127.0.0.1:") and info["nthreads"] == 1
            assert info["nanny"].startswith("tls://127.0.0.1:")
            addresses += [addr, info["nanny"]]
        # a client without the cluster's certificates gets nowhere, on any of its ports
        for addr in addresses:
            with pytest.raises(OSError):
                Client(addr.replace("tls://", "tcp://"), timeout=3).close()
    finally:
        client.close()
        cluster.close()
