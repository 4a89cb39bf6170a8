"""Check before you train, and say so when a save fails later.

A sessions folder (or --out's folder, or `data --out`) that cannot take a file is one line
and exit 2 before any row. A save that fails mid-run warns once on stderr, the run goes
on to its end, and it ends non-zero with a line naming the newest snapshot that survived.

As root, chmod does not stop writes: the processes run under `setpriv` without
CAP_DAC_OVERRIDE, so a read-only folder is read-only to them."""

import contextlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.store.files import read_file

CLI = [sys.executable, "-m", "freqtui.cli"]
TINY = ["--duration", "0.2", "--method", "handoff", "--backend", "torch"]
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
WAIT_S = 120.0


def _setpriv_blocks_writes() -> str | None:
    """None when a setpriv'd process cannot write into a 0555 folder; else why not."""
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"ro-probe-{os.getpid()}"
    probe.mkdir(mode=0o555, exist_ok=True)
    try:
        r = subprocess.run([*NO_DAC, "touch", str(probe / "x")], capture_output=True)
        if r.returncode == 0:
            return "chmod 0555 does not stop writes here even without CAP_DAC_OVERRIDE"
        return None
    finally:
        shutil.rmtree(probe, ignore_errors=True)


needs_read_only = pytest.mark.skipif(
    _setpriv_blocks_writes() is not None, reason=str(_setpriv_blocks_writes())
)


def cli(*args: str, unprivileged: bool = False, cwd: Path | None = None):
    prefix = NO_DAC if unprivileged else []
    return subprocess.run(
        [*prefix, *CLI, *args], capture_output=True, text=True, timeout=WAIT_S, cwd=cwd
    )


def assert_refused_before_work(r, words: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert words in lines[0] and "Traceback" not in r.stderr
    assert "training:" not in r.stdout and "wrote" not in r.stdout


@pytest.mark.slow
@needs_read_only
def test_a_read_only_sessions_folder_is_refused_before_training(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    r = cli("train", "--headless", "--sessions", str(ro), *TINY, unprivileged=True)
    assert_refused_before_work(r, "Permission denied")
    assert str(ro) in r.stderr


@pytest.mark.slow
def test_a_file_as_sessions_folder_is_refused_before_training(tmp_path):
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    r = cli("train", "--headless", "--sessions", str(f), *TINY)
    assert_refused_before_work(r, "Not a directory")
    r = cli("--sessions", str(f), *TINY)  # the console, before it opens
    assert_refused_before_work(r, "Not a directory")


@pytest.mark.slow
@needs_read_only
def test_out_in_a_read_only_folder_is_refused_before_training(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    sessions = tmp_path / "s"
    r = cli(
        "train",
        "--headless",
        "--sessions",
        str(sessions),
        *TINY,
        "--out",
        str(ro / "w.pt"),
        unprivileged=True,
    )
    assert_refused_before_work(r, "cannot save weights")


@pytest.mark.slow
def test_out_on_a_device_is_refused_and_the_device_left_alone(tmp_path):
    r = cli("train", "--headless", "--sessions", str(tmp_path / "s"), *TINY, "--out", "/dev/null")
    assert_refused_before_work(r, "not a regular file")
    assert Path("/dev/null").is_char_device()


@needs_read_only
def test_data_into_a_read_only_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    for out in (ro, ro / "sub"):
        r = cli("data", "--out", str(out), unprivileged=True)
        assert_refused_before_work(r, "Permission denied")


@pytest.mark.slow
@needs_read_only
def test_a_save_failing_mid_run_warns_once_trains_on_and_names_the_survivor(tmp_path):
    sessions = tmp_path / "s"
    p = subprocess.Popen(
        [*NO_DAC, *CLI, "train", "--headless", "--sessions", str(sessions), *TINY]
        + ["--epochs", "3", "--autosave", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while not any("snapshot saved (autosave)" in x for x in out):
        assert time.monotonic() < deadline and p.poll() is None, out
        with contextlib.suppress(queue.Empty):
            out.append(lines.get(timeout=0.2))
    (folder,) = sessions.iterdir()
    folder.chmod(0o555)  # from now on every save of the run fails
    try:
        rc = p.wait(WAIT_S)
        err = p.stderr.read()
    finally:
        folder.chmod(0o755)
    time.sleep(0.3)
    while not lines.empty():
        out.append(lines.get())
    stdout = "".join(out)
    assert rc == 1, err
    assert "training finished at epoch 3/3" in stdout  # the run went on to its end
    # but its last line does not say "finished" as if all were well: the end is not on disk
    final = stdout.strip().splitlines()[-1]
    assert "finished" not in final and "--epochs 4" not in final, final
    assert "NOT saved at the end" in final and "--resume" in final, final
    assert "2,400 rows trained in all" in stdout
    warnings = [x for x in err.splitlines() if "not saved" in x and "warning" in x]
    assert len(warnings) == 1, err  # about ten saves failed: one warning
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    found = re.search(r"newest snapshot on disk is (\S+) \(epoch (\d+), row ([\d,]+)", last)
    assert found, err
    obj = read_file(Path(found.group(1)))
    assert Path(found.group(1)) == folder / "latest.pt"
    done, row = int(obj["trainer"]["epoch"]), int(obj["trainer"]["row"])
    assert (done + 1, row) == (int(found.group(2)), int(found.group(3).replace(",", "")))
    assert done * 800 + row < 2400  # older than the run's end: the line says what was lost
