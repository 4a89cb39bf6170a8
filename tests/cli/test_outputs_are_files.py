"""Outputs are files, names are bounded, folders may be unreadable (issue 19).

Every path the tool writes (train --out, compare --png, report and data files, a sweep's
sweep.json and results) refuses a fifo, a device, a folder and a symbolic link with one
line and exit 2, and leaves it as it was. A name too long or a folder the user cannot
read is one line (or "unreadable" in a listing), never a traceback. A copied session
saves into its own folder. Temp files are removed only once their writer is gone."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine.store.files import read_file

CLI = [sys.executable, "-m", "freqtui.cli"]
TINY = ["--duration", "0.2", "--method", "handoff", "--backend", "torch"]
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
LONG_NAME = "n" * 300  # a file name holds 255 bytes


def cli(*args: str, prefix: list[str] | None = None, timeout: float = 120):
    return subprocess.run(
        [*(prefix or []), *CLI, *args], capture_output=True, text=True, timeout=timeout
    )


def assert_one_line(r, *words: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def session(trained_session) -> tuple[Path, str]:
    """A sessions folder with one finished 1-epoch session in it, made once for the whole
    test run (tests/conftest.py): the tests here only read it or copy it."""
    sessions, run_id = trained_session
    assert [p.name for p in sessions.iterdir()] == [run_id]
    return sessions, run_id


# ---- outputs ---------------------------------------------------------------------------
def make_bad(path: Path, kind: str, elsewhere: Path):
    """Put a `kind` at `path`; returns a check that it is still there, untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
        return lambda: stat.S_ISFIFO(os.lstat(path).st_mode)
    if kind == "device":
        try:  # a /dev/null of our own: as root, the tool once replaced /dev/null
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("mknod needs root")
        return lambda: stat.S_ISCHR(os.lstat(path).st_mode)
    if kind == "folder":
        path.mkdir()
        return lambda: path.is_dir() and not any(path.iterdir())
    target = elsewhere / "precious.txt"  # a link out of place
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("keep me")
    path.symlink_to(target)
    return lambda: path.is_symlink() and target.read_text() == "keep me"


KINDS = ["fifo", "device", "folder", "symlink"]
WRITERS = ["train --out", "compare --png", "report --out", "data --out", "sweep.json"]
WORDS = {
    "fifo": "not a regular file",
    "device": "not a regular file",
    "folder": "is a folder",
    "symlink": "symbolic link",
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", WRITERS)
def test_every_output_refuses_a_fifo_a_device_a_folder_and_a_link(tmp_path, session, writer, kind):
    sessions, run_id = session
    out = tmp_path / "out"
    if writer == "train --out":
        bad = out / "w.pt"
        args = ["train", "--headless", *TINY, "--sessions", str(tmp_path / "s"), "--out", str(bad)]
    elif writer == "compare --png":
        bad = out / "c.png"
        args = ["compare", run_id, "--sessions", str(sessions), "--png", str(bad)]
    elif writer == "report --out":
        bad = out / "graph1_test_f2.png"
        args = ["report", run_id, "--sessions", str(sessions), "--out", str(out)]
    elif writer == "data --out":
        bad = out / "train.csv"
        args = ["data", *TINY, "--out", str(out)]
    else:
        bad = tmp_path / "s" / "mine" / "sweep.json"
        args = ["sweep", "--grid", "method=handoff", *TINY[:2], "--name", "mine"]
        args += ["--sessions", str(tmp_path / "s")]
    intact = make_bad(bad, kind, tmp_path / "elsewhere")
    r = cli(*args, timeout=60)  # a fifo opened for writing would block: it must not be
    assert_one_line(r, str(bad), WORDS[kind])
    assert intact(), f"{bad} was changed"
    assert "wrote" not in r.stdout and "training:" not in r.stdout
    if writer == "sweep.json":
        assert not (bad.parent / "results.json").exists()


# ---- names too long, folders unreadable -------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["eval", LONG_NAME],
        ["report", LONG_NAME, "--out", "{tmp}/r"],
        ["compare", LONG_NAME],
        ["train", "--headless", "--resume", LONG_NAME],
        ["--resume", LONG_NAME],
        ["sessions", "--sessions", "{tmp}/" + LONG_NAME],
        ["train", "--headless", *TINY, "--sessions", "{tmp}/" + LONG_NAME],
        ["sweep", "--grid", "method=handoff", "--name", LONG_NAME],
        ["compare", "{id}", "--png", "{tmp}/" + LONG_NAME + ".png"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
@pytest.mark.slow
def test_a_name_too_long_is_one_line(tmp_path, session, argv):
    sessions, run_id = session
    args = [a.replace("{tmp}", str(tmp_path)).replace("{id}", run_id) for a in argv]
    if "--sessions" not in args:
        args += ["--sessions", str(sessions)]
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def _setpriv_blocks_reads() -> str | None:
    """None when a setpriv'd process cannot list a mode-000 folder; else why not."""
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"unreadable-probe-{os.getpid()}"
    probe.mkdir(mode=0, exist_ok=True)
    try:
        r = subprocess.run([*NO_DAC, "ls", str(probe)], capture_output=True)
        return None if r.returncode != 0 else "mode 000 does not stop reads here"
    finally:
        probe.rmdir()


@pytest.fixture
def unreadable(tmp_path, session) -> tuple[Path, str]:
    """A copy of the sessions folder where one more session's folder is mode 000; the
    processes run without CAP_DAC_OVERRIDE (as root, chmod alone does not stop reads)."""
    if os.getuid() == 0 and _setpriv_blocks_reads() is not None:
        pytest.skip(str(_setpriv_blocks_reads()))
    sessions, run_id = session
    copy = tmp_path / "sessions"
    shutil.copytree(sessions, copy)
    shutil.copytree(copy / run_id, copy / "locked")
    (copy / "locked").chmod(0)
    yield copy, run_id
    (copy / "locked").chmod(0o755)


@pytest.mark.slow
def test_an_unreadable_session_lists_as_unreadable_and_the_others_still_show(unreadable):
    sessions, run_id = unreadable
    prefix = NO_DAC if os.getuid() == 0 else []
    r = cli("sessions", "--sessions", str(sessions), prefix=prefix)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("locked")]
    assert "unreadable" in line
    assert any(x.startswith(run_id) and "done" in x for x in r.stdout.splitlines())


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "locked"],
        ["report", "locked", "--out", "{tmp}/r"],
        ["compare", "locked"],
        ["train", "--headless", "--resume", "locked", "--epochs", "2"],
        ["--resume", "locked"],
    ],
    ids=lambda a: a[0],
)
@pytest.mark.slow
def test_an_unreadable_session_is_one_line(tmp_path, unreadable, argv):
    sessions, _ = unreadable
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    prefix = NO_DAC if os.getuid() == 0 else []
    r = cli(*args, "--sessions", str(sessions), prefix=prefix)
    assert_one_line(r, "locked", "unreadable")


# ---- a copied session is its own ---------------------------------------------------------
@pytest.mark.slow
def test_resuming_a_copied_session_saves_into_the_copy_not_the_original(tmp_path, session):
    sessions, run_id = session
    root = tmp_path / "sessions"
    shutil.copytree(sessions / run_id, root / run_id)
    shutil.copytree(root / run_id, root / "copy")
    original = {p.name: p.read_bytes() for p in (root / run_id).iterdir() if p.is_file()}
    r = cli("train", "--headless", "--resume", "copy", "--epochs", "2", "--sessions", str(root))
    assert r.returncode == 0, r.stderr
    assert {p.name: p.read_bytes() for p in (root / run_id).iterdir() if p.is_file()} == original
    snap = read_file(root / "copy" / "latest.pt")
    assert snap["trainer"]["epoch"] == 2 and snap["run_id"] == "copy"
    assert (root / "copy" / "previous.pt").exists()
    assert "session copy" in r.stdout


# ---- temp files: removed only once their writer is gone -----------------------------------
def test_a_listing_keeps_the_temp_file_of_a_living_writer_and_removes_a_dead_ones(
    tmp_path, session
):
    sessions, run_id = session
    root = tmp_path / "sessions"
    shutil.copytree(sessions / run_id, root / run_id)
    living = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        # no lock held: the writer's pid in the name is what keeps its save in progress
        alive_tmp = root / run_id / f".latest.pt.{living.pid}.k1l2m3.tmp"
        dead_tmp = root / run_id / f".previous.pt.{dead.pid}.x9y8z7.tmp"
        for p in (alive_tmp, dead_tmp):
            p.write_bytes(b"half a snapshot")
        r = cli("sessions", "--sessions", str(root))
        assert r.returncode == 0 and run_id in r.stdout, r.stderr
        assert alive_tmp.exists() and not dead_tmp.exists()
    finally:
        living.communicate(b"")
    r = cli("sessions", "--sessions", str(root))
    assert r.returncode == 0 and not alive_tmp.exists()
