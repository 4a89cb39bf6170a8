"""Commands that train nothing answer at once: `--help`, `--version`, `methods`,
`sessions` (from the sidecars), `eval` of a file refused before torch.load, `export
--help` and every argument error load no torch, numba or textual. Each runs as a real
process under a wrapper that writes, at exit, which of those modules it loaded.

`freqtui sessions` reads the `latest.json` sidecar written beside each snapshot; a session
without one (saved before sidecars) or with one that is stale, malformed or hostile is
still listed, the same, from its snapshot (which loads torch, for that listing only). The
corrupt and hostile sidecar cases check what is listed, not what is loaded: they list in
this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.run import TrainingRun
from engine.store.sessions import SIDECAR, snapshot_payload, write_snapshot

HEAVY = ("torch", "numba", "textual")
# the CLI run as `freqtui`, writing the heavy modules it loaded to $LOADED_FILE at exit
PROBE = """
import atexit, os, runpy, sys
def loaded():
    names = [m for m in os.environ["HEAVY"].split(",") if m in sys.modules]
    open(os.environ["LOADED_FILE"], "w").write(",".join(names))
atexit.register(loaded)
sys.argv = ["freqtui", *sys.argv[1:]]
runpy.run_module("freqtui.cli", run_name="__main__")
"""


def freqtui(tmp: Path, *args: str) -> tuple[int, str, str, list[str]]:
    """rc, stdout, stderr and the heavy modules loaded by one `freqtui` process."""
    marker = tmp / "loaded.txt"
    marker.unlink(missing_ok=True)
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=120,
        env={**os.environ, "LOADED_FILE": str(marker), "HEAVY": ",".join(HEAVY)},
    )
    assert marker.exists(), f"the probe did not report: {r.stderr[-2000:]}"
    text = marker.read_text()
    return r.returncode, r.stdout, r.stderr, text.split(",") if text else []


def one_line_error(rc: int, err: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("freqtui: error: "), err


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> Path:
    """Three sessions saved as a run saves them (each with its sidecar)."""
    root = tmp_path_factory.mktemp("sessions")
    config = RunConfig(method="handoff", duration=0.05, backend="torch", epochs=3)
    for i in range(3):
        run = TrainingRun(config.replace(torch_seed=i), sessions_root=root, run_id=f"run-{i}")
        write_snapshot(root / f"run-{i}", snapshot_payload(run.capture(), f"run-{i}"))
    return root


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["methods"],
        ["export", "--help"],
        ["sessions", "--help"],
    ],
)
def test_help_version_and_methods_load_no_torch(tmp_path, args):
    rc, out, err, loaded = freqtui(tmp_path, *args)
    assert rc == 0, err
    assert out.strip()
    assert loaded == [], f"freqtui {' '.join(args)} loaded {loaded}"


def test_methods_lists_every_method_with_its_options_without_torch(tmp_path):
    from engine.config import registered_methods

    rc, out, _, loaded = freqtui(tmp_path, "methods")
    assert loaded == []
    for m in registered_methods():
        assert f"{m.name}" in out and m.description in out
        for option in m.options:
            assert f"{option.name}={option.default}" in out and option.help[:40] in out


@pytest.mark.parametrize(
    "args",
    [
        ["--epochsx", "3"],  # an unknown flag
        ["--epochs", "3", "train", "--headless"],  # a flag before its command
        ["train", "--headless", "--epochs", "-1"],  # a value out of range
        ["train", "--headless", "--lr", "abc"],  # not a number
        ["train", "--headless", "--method", "nope"],
        ["train", "--headless", "-O", "thr=-1"],  # a method option's own check
        ["train", "--headless", "--method", "tbptt", "-O", "reset=sometimes"],
        ["train", "--headless", "--fs", "10"],  # Nyquist
        ["export", "x", "--csv", "--json"],
        ["frobnicate"],
    ],
)
def test_argument_errors_are_one_line_and_load_no_torch(tmp_path, args):
    rc, _, err, loaded = freqtui(tmp_path, *args)
    one_line_error(rc, err)
    assert loaded == [], f"{args} loaded {loaded}"


def _zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * 1_000_000)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.write_text("not a model at all\n"), "not a torch file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (_zip_bomb, "refused: member"),
        (lambda p: None, "no such file"),
    ],
)
def test_eval_of_a_refused_file_loads_no_torch(tmp_path, make, words):
    bad = tmp_path / "bad.pt"
    make(bad)
    rc, _, err, loaded = freqtui(tmp_path, "eval", str(bad))
    one_line_error(rc, err)
    assert words in err
    assert loaded == []


def test_eval_of_a_device_loads_no_torch(tmp_path):
    rc, _, err, loaded = freqtui(tmp_path, "eval", "/dev/null")
    one_line_error(rc, err)
    assert loaded == []


def listing(tmp: Path, root: Path) -> tuple[list[dict], list[str]]:
    rc, out, err, loaded = freqtui(tmp, "sessions", "--json", "--sessions", str(root))
    assert rc == 0 and "Traceback" not in err, err
    return json.loads(out), loaded


def listing_here(root: Path, capfd) -> list[dict]:
    """`freqtui sessions --json` run in this process, for the cases that check what is
    listed, not which modules a process loads: one start of Python and torch fewer each."""
    from freqtui.cli import main

    capfd.readouterr()
    rc = main(["sessions", "--json", "--sessions", str(root)])
    out, err = capfd.readouterr()
    assert rc == 0 and "Traceback" not in err, err
    return json.loads(out)


@pytest.fixture(scope="module")
def expected(tmp_path_factory, sessions) -> list[dict]:
    """The listing of the three untouched sessions (from their sidecars), taken once: the
    listing each test below compares its changed copy against."""
    rows, _ = listing(tmp_path_factory.mktemp("expected"), sessions)
    return rows


@pytest.mark.slow
def test_sessions_reads_the_sidecars_without_torch(tmp_path, sessions):
    rows, loaded = listing(tmp_path, sessions)
    assert loaded == []
    assert sorted(r["id"] for r in rows) == ["run-0", "run-1", "run-2"]
    assert all(r["method"] == "handoff" and r["epochs"] == 3 and not r["error"] for r in rows)
    rc, out, _, loaded = freqtui(tmp_path, "sessions", "--sessions", str(sessions))
    assert rc == 0 and loaded == [] and "run-1" in out and "handoff" in out


def copy_sessions(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)  # copy2: the snapshots keep their times, so sidecars hold
    return dst


@pytest.mark.slow
def test_a_session_without_sidecar_is_listed_the_same_from_its_snapshot(
    tmp_path, sessions, expected
):
    root = copy_sessions(sessions, tmp_path / "s")
    (root / "run-1" / SIDECAR).unlink()  # saved before sidecars
    rows, loaded = listing(tmp_path, root)
    assert "torch" in loaded  # read from the snapshot: the listing is the same
    assert [{**r, "path": ""} for r in rows] == [{**r, "path": ""} for r in expected]


@pytest.mark.parametrize(
    "sidecar",
    [
        b"{not json",
        b"\xff\xfe garbage",
        b"[]",
        b"null",
        b"[" * 100_000 + b"]" * 100_000,  # deeper than json may recurse
        b" " * 100_000,  # larger than any sidecar
        json.dumps({"format": "freqtui-session", "version": 1}).encode(),  # incomplete
    ],
    ids=["broken", "not-utf8", "a-list", "null", "deep", "huge", "incomplete"],
)
def test_a_corrupt_sidecar_is_ignored_and_the_snapshot_listed(
    tmp_path, sessions, expected, sidecar, capfd
):
    root = copy_sessions(sessions, tmp_path / "s")
    (root / "run-2" / SIDECAR).write_bytes(sidecar)
    rows = listing_here(root, capfd)
    assert [{**r, "path": ""} for r in rows] == [{**r, "path": ""} for r in expected]


def _edit_sidecar(path: Path, **session) -> None:
    data = json.loads(path.read_text())
    data["session"].update(session)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change",
    [
        {"id": "../../etc"},
        {"id": ""},
        {"epoch": -5},
        {"frozen_mse_test": "NaN"},
        {"method": "x" * 10_000},
        {"saved_at": "\x1b[2J\x1b[31mred"},  # a terminal escape
        {"epoch": {"nested": [1, 2]}},
        {"surprise": 1},  # a field this freqtui does not know
    ],
    ids=["id-path", "id-empty", "negative", "nan-text", "long", "escape", "nested", "unknown"],
)
def test_a_hostile_sidecar_is_ignored_and_the_snapshot_listed(
    tmp_path, sessions, expected, change, capfd
):
    root = copy_sessions(sessions, tmp_path / "s")
    side = root / "run-0" / SIDECAR
    _edit_sidecar(side, **change)
    snap = root / "run-0" / "latest.pt"
    st = os.stat(sessions / "run-0" / "latest.pt")
    os.utime(snap, ns=(st.st_atime_ns, st.st_mtime_ns))  # still matches its snapshot
    rows = listing_here(root, capfd)
    assert [{**r, "path": ""} for r in rows] == [{**r, "path": ""} for r in expected]


@pytest.mark.slow
def test_a_stale_sidecar_is_not_believed(tmp_path, sessions):
    """A sidecar that names another size or time of latest.pt (a save that crashed
    between the snapshot and its sidecar, a snapshot replaced by hand) is ignored."""
    root = copy_sessions(sessions, tmp_path / "s")
    side = root / "run-0" / SIDECAR
    _edit_sidecar(side, method="tbptt")  # what the old snapshot would have said
    os.utime(root / "run-0" / "latest.pt", ns=(1, 1))  # latest.pt is newer than it
    rows, loaded = listing(tmp_path, root)
    assert "torch" in loaded
    assert {r["id"]: r["method"] for r in rows}["run-0"] == "handoff"


@pytest.mark.slow
def test_a_sidecar_that_is_a_fifo_or_a_link_is_ignored(tmp_path, sessions, expected):
    root = copy_sessions(sessions, tmp_path / "s")
    (root / "run-0" / SIDECAR).unlink()
    os.mkfifo(root / "run-0" / SIDECAR)  # opening it for reading would block
    (root / "run-1" / SIDECAR).unlink()
    (root / "run-1" / SIDECAR).symlink_to("/dev/zero")
    rows, _ = listing(tmp_path, root)
    assert [{**r, "path": ""} for r in rows] == [{**r, "path": ""} for r in expected]


@pytest.mark.slow
def test_a_sidecar_that_cannot_be_written_never_fails_the_save(tmp_path, sessions):
    root = copy_sessions(sessions, tmp_path / "s")
    (root / "run-0" / SIDECAR).unlink()
    (root / "run-0" / SIDECAR).mkdir()  # in the sidecar's place: its write fails
    config = RunConfig(method="handoff", duration=0.05, backend="torch", epochs=3)
    run = TrainingRun(config, sessions_root=root, run_id="run-0")
    path = write_snapshot(root / "run-0", snapshot_payload(run.capture(), "run-0"))
    assert path.exists()
    rows, loaded = listing(tmp_path, root)
    assert "torch" in loaded  # listed from its snapshot
    assert sorted(r["id"] for r in rows) == ["run-0", "run-1", "run-2"]
