"""Hostile files cost nothing to refuse: each is one line on stderr and exit 2, in under
5 s of CPU and 300 MB of memory, both for `eval` and when it sits in a session folder
(`freqtui sessions` then lists the other sessions and names the bad one); `eval` refuses
each before it imports torch (engine/store/safeload.py `precheck`).

Files made with a recomputed checksum pass the checksum (anyone can make one): what stops
them is the config validated by RunConfig with bounded sizes, and the history's schema."""

import io
import os
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from engine.config import RunConfig
from engine.run import TrainingRun
from engine.store.files import checksum

# the CLI run under a wrapper that writes the process's own peak RSS (VmHWM, which a new
# program image starts afresh; ru_maxrss would carry this test process's size across fork)
# and whether it imported torch
PEAK = """
import atexit, os, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            torch = int("torch" in sys.modules)
            open(os.environ["PEAK_FILE"], "w").write(f"{line.split()[1]} {torch}")
atexit.register(peak)
sys.argv = ["freqtui", *sys.argv[1:]]
runpy.run_module("freqtui.cli", run_name="__main__")
"""
CLI = [sys.executable, "-c", PEAK]
CPU_LIMIT_S = 5.0
RSS_LIMIT_MB = 300.0


def measured(*args: str, cwd: Path) -> tuple[int, str, str, float, float, bool]:
    """rc, stdout, stderr, CPU seconds (rusage), peak RSS (MB) of one real process and
    whether it imported torch."""
    out, err, peak = cwd / "out.txt", cwd / "err.txt", cwd / "peak.txt"
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.Popen(
            [*CLI, *args],
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            env={**os.environ, "PEAK_FILE": str(peak)},
        )
    deadline = time.monotonic() + 120  # a hang guard, not the bound asserted
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            pytest.fail(f"{args}: still running after 120 s")
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting
    cpu = ru.ru_utime + ru.ru_stime
    kb, torch_loaded = peak.read_text().split()
    return p.returncode, out.read_text(), err.read_text(), cpu, int(kb) / 1024, torch_loaded == "1"


def good(root: Path, run_id: str = "good") -> Path:
    config = RunConfig(method="clock", duration=0.05, backend="torch").validated()
    run = TrainingRun(config, sessions_root=root, run_id=run_id, state_check=False)
    run.trainer.train_rows(30)
    return run.save_snapshot()


def resealed(obj: dict) -> bytes:
    obj = {k: v for k, v in obj.items() if k != "checksum"}
    obj["checksum"] = checksum(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def unsealed(extra) -> bytes:
    buf = io.BytesIO()
    torch.save({"format": "freqtui", "version": 1, "kind": "snapshot", **extra}, buf)
    return buf.getvalue()


def self_containing() -> bytes:
    x: list = []
    x.append(x)
    return unsealed({"history": x, "checksum": "0" * 64})


def shared_nested() -> bytes:
    x: list = [0.0]
    for _ in range(60):  # 2^60 leaves when walked, a few hundred bytes on disk
        x = [x, x]
    return unsealed({"trainer": {"w": x}, "checksum": "0" * 64})


def shared_wide() -> bytes:
    inner = list(range(20_000))
    return unsealed({"trainer": {"w": [inner] * 20_000}, "checksum": "0" * 64})


def zip_bomb(good_bytes: bytes) -> bytes:
    """The good file with its data.pkl deflated and a 512 MB member of zeros added."""
    src = zipfile.ZipFile(io.BytesIO(good_bytes))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info))
        prefix = src.infolist()[0].filename.split("/")[0]
        with z.open(f"{prefix}/data/999", "w", force_zip64=True) as f:
            block = bytes(2**20)
            for _ in range(512):
                f.write(block)
    return buf.getvalue()


def with_config(obj: dict, **changes) -> bytes:
    obj = dict(obj)
    obj["config"] = {**obj["config"], **changes}
    return resealed(obj)


def with_history(obj: dict, history) -> bytes:
    return resealed({**obj, "history": history})


CASES = {
    "self-containing-list": (lambda g, o: self_containing(), "nested deeper"),
    "shared-nested-lists": (lambda g, o: shared_nested(), "nested deeper"),
    "shared-wide-lists": (lambda g, o: shared_wide(), "more than"),
    "zip-bomb": (lambda g, o: zip_bomb(g), "compressed"),
    "hidden-1e6": (lambda g, o: with_config(o, hidden_size=10**6), "hidden-size"),
    "hidden-64.5": (lambda g, o: with_config(o, hidden_size=64.5), "hidden-size"),
    "test-seed-negative": (lambda g, o: with_config(o, test_seed=-5), "test-seed"),
    "torch-seed-1e30": (lambda g, o: with_config(o, torch_seed=10**30), "torch-seed"),
    "clock-t0-inf": (lambda g, o: with_config(o, options={"t0": float("inf")}), "t0"),
    "layers-100000": (lambda g, o: with_config(o, num_layers=100_000), "num-layers"),
    "duration-1e4": (lambda g, o: with_config(o, duration=1e4), "rows per set"),
    "frequencies-1e5": (lambda g, o: with_config(o, frequencies=[1.0] * 10**5), "frequencies"),
    "frequencies-20": (lambda g, o: with_config(o, frequencies=[1.0] * 20), "frequencies"),
    "history-evals": (
        lambda g, o: with_history(o, {**o["history"], "evals": [{"train": 5}]}),
        "history",
    ),
    "history-online": (
        lambda g, o: with_history(o, {**o["history"], "online": [[1, 2]]}),
        "history",
    ),
    "history-string": (lambda g, o: with_history(o, "x" * 1000), "history"),
}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> tuple[bytes, dict]:
    path = good(tmp_path_factory.mktemp("good"))
    return path.read_bytes(), torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def hostile(good_file) -> dict[str, bytes]:
    """Each case's file, made once (the zip bomb deflates 512 MB)."""
    return {case: make(*good_file) for case, (make, _) in CASES.items()}


@pytest.fixture(scope="module")
def listed(tmp_path_factory, hostile) -> tuple[int, str, str, float, float]:
    """One `freqtui sessions` of a folder holding a good session and every hostile file, each
    in a session folder of its own (`hostile-CASE`): one start of Python and torch for all
    the cases, and the bounds then hold for all of them together."""
    tmp = tmp_path_factory.mktemp("listed")
    sessions = tmp / "sessions"
    good(sessions, "a-good-session")
    for case, data in hostile.items():
        (sessions / f"hostile-{case}").mkdir()
        (sessions / f"hostile-{case}" / "latest.pt").write_bytes(data)
    return measured("sessions", "--sessions", str(sessions), cwd=tmp)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, hostile) -> dict[str, tuple]:
    """`freqtui eval` of each case's file, one process a case, run side by side on threads
    (their starts of Python and torch overlap; CPU and peak RSS are each process's own):
    per case the file's path and what `measured` says of its process."""

    def one(case: str) -> tuple:
        tmp = tmp_path_factory.mktemp(case)
        (tmp / "sessions" / "hostile").mkdir(parents=True)
        bad = tmp / "sessions" / "hostile" / "latest.pt"
        bad.write_bytes(hostile[case])
        return (bad, *measured("eval", str(bad), cwd=tmp))

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(CASES, pool.map(one, CASES), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_file_is_refused_in_one_line_cheaply(evaluated, listed, case):
    _, words = CASES[case]
    bad, rc, out, err, cpu, rss, torch_loaded = evaluated[case]
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and str(bad) in lines[0], err
    assert words in lines[0] and "Traceback" not in err
    assert cpu < CPU_LIMIT_S, f"eval took {cpu:.1f} s of CPU"
    assert rss < RSS_LIMIT_MB, f"eval peaked at {rss:.0f} MB"
    assert not torch_loaded, "refused only after torch was imported"  # safeload.precheck

    rc, out, err, cpu, rss, _ = listed
    assert rc == 0 and err == "", err
    rows = out.strip().splitlines()[1:]
    assert len(rows) == 1 + len(CASES)
    assert any(r.startswith("a-good-session") and "clock" in r for r in rows), out
    (row,) = [r for r in rows if r.split()[0] == f"hostile-{case}"]
    assert "unreadable" in row, out
    assert cpu < CPU_LIMIT_S and rss < RSS_LIMIT_MB, (cpu, rss)


def test_dev_null_is_not_called_missing(tmp_path):
    rc, out, err, cpu, rss, _ = measured("eval", "/dev/null", cwd=tmp_path)
    assert rc == 2 and "not a regular file" in err and "no such file" not in err
