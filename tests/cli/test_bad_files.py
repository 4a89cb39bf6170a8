"""Files that are never trusted blindly: every bad file gets one line naming it and the
reason, exit code 2, no traceback, and no other file is created or changed. A file made
to run code when unpickled does not run it."""

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from engine.config import RunConfig
from engine.model import build_model
from engine.run import TrainingRun
from engine.store.files import checksum
from freqtui.cli import main

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this calls os.system: a file that would run code when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def good_snapshot(root: Path) -> Path:
    config = RunConfig(method="handoff", duration=0.05, backend="torch").validated()
    run = TrainingRun(config, sessions_root=root, run_id="good", state_check=False)
    run.trainer.train_rows(30)
    return run.save_snapshot()


def raw(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def sealed(obj: dict) -> bytes:
    obj = {k: v for k, v in obj.items() if k != "checksum"}
    obj["checksum"] = checksum(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def flip_in_tensor_data(data: bytes) -> bytes:
    """Flip one byte in the middle of the largest tensor's stored bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    local = info.header_offset
    name_len = int.from_bytes(data[local + 26 : local + 28], "little")
    extra_len = int.from_bytes(data[local + 28 : local + 30], "little")
    at = local + 30 + name_len + extra_len + info.file_size // 2
    out = bytearray(data)
    out[at] ^= 0x01  # one bit: the weights still look like weights
    return bytes(out)


def make_bad(kind: str, good: Path, marker: Path) -> bytes:
    data = good.read_bytes()
    if kind == "truncated":
        return data[: len(data) // 2]
    if kind == "empty":
        return b""
    if kind == "corrupted":
        return flip_in_tensor_data(data)
    if kind == "foreign-text":
        return b"these are not the weights you are looking for\n"
    if kind == "foreign-torch":
        buf = io.BytesIO()
        torch.save(build_model(RunConfig()).state_dict(), buf)  # a plain state_dict
        return buf.getvalue()
    if kind == "incompatible":
        obj = raw(good)
        small = build_model(RunConfig(hidden_size=32))
        obj["model"] = dict(small.state_dict())  # hidden 32 weights, config says 64
        return sealed(obj)
    if kind == "newer":
        obj = raw(good)
        obj["version"] = 99
        return sealed(obj)
    if kind == "code-torch":
        buf = io.BytesIO()
        torch.save({"format": "freqtui", "version": 1, "x": Payload(marker)}, buf)
        return buf.getvalue()
    if kind == "code-pickle":
        return pickle.dumps({"format": "freqtui", "version": 1, "x": Payload(marker)})
    raise AssertionError(kind)


REASONS = {
    "truncated": "truncated",
    "empty": "truncated",
    "corrupted": "corrupted",
    "foreign-text": "not a torch file",
    "foreign-torch": "not a freqtui file",
    "incompatible": "incompatible",
    "newer": "newer",
    "code-torch": "nothing was run",
    "code-pickle": "nothing was run",
}


def tree(root: Path) -> dict:
    """Every file and folder under root with its size and mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(root))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def place(tmp_path):
    sessions = tmp_path / "sessions"
    good = good_snapshot(sessions)
    marker = tmp_path / "PAYLOAD_RAN"

    def put(kind: str) -> Path:
        bad = tmp_path / "files" / f"{kind}.pt"
        bad.parent.mkdir(exist_ok=True)
        bad.write_bytes(make_bad(kind, good, marker))
        return bad

    return tmp_path, sessions, put, marker


def cli(capfd, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(REASONS))
def test_each_bad_file_is_one_line_exit_2_and_touches_nothing(place, capfd, kind):
    tmp_path, sessions, put, marker = place
    bad = put(kind)
    before = tree(tmp_path)
    commands = [
        ["eval", bad],
        ["eval", bad, "--json"],
        ["report", bad, "--out", tmp_path / "report"],
        ["train", "--headless", "--resume", bad, "--sessions", sessions],
    ]
    for argv in commands:
        rc, out, err = cli(capfd, *argv)
        assert rc == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (argv, err)
        assert str(bad) in lines[0] and REASONS[kind] in lines[0], lines[0]
        assert "Traceback" not in err and out == ""
        assert tree(tmp_path) == before, argv  # nothing created, nothing changed
    assert not marker.exists()


def test_a_session_whose_latest_file_is_bad_lists_as_unreadable(place, capfd):
    tmp_path, sessions, put, marker = place
    bad_folder = sessions / "20260101-000000-handoff"
    bad_folder.mkdir()
    (bad_folder / "latest.pt").write_bytes((put("code-torch")).read_bytes())
    before = tree(tmp_path)
    rc, out, err = cli(capfd, "sessions", "--sessions", sessions)
    assert rc == 0 and err == ""
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {"good", "20260101-000000-handoff"}
    assert "unreadable" in rows["20260101-000000-handoff"]
    assert "nothing was run" in rows["20260101-000000-handoff"]
    assert "handoff" in rows["good"] and "unreadable" not in rows["good"]
    # by id too: one line, exit 2
    rc, out, err = cli(capfd, "eval", "20260101", "--sessions", sessions)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "nothing was run" in err
    assert tree(tmp_path) == before and not marker.exists()


@pytest.mark.slow
def test_a_weights_file_evaluates_but_does_not_resume(place, capfd):
    tmp_path, sessions, put, marker = place
    weights = tmp_path / "w.pt"
    rc, _, err = cli(
        capfd, "train", "--headless", "--method", "handoff", "--duration", "0.05", "--out", weights
    )
    assert rc == 0, err
    rc, out, err = cli(capfd, "eval", weights)
    assert rc == 0 and "frozen MSE" in out
    before = tree(tmp_path)
    rc, out, err = cli(capfd, "train", "--headless", "--resume", weights)
    assert rc == 2 and "not a snapshot" in err and len(err.strip().splitlines()) == 1
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "kind, argv",
    [
        ("truncated", ["eval", "{bad}"]),
        ("code-pickle", ["train", "--headless", "--resume", "{bad}"]),
        ("newer", ["report", "{bad}", "--out", "{tmp}/report"]),
    ],
)
@pytest.mark.slow
def test_as_a_real_process_too(place, kind, argv):
    tmp_path, sessions, put, marker = place
    bad = put(kind)
    before = tree(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "freqtui.cli", *(a.format(bad=bad, tmp=tmp_path) for a in argv)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(bad) in r.stderr and REASONS[kind] in r.stderr
    assert "Traceback" not in r.stderr
    assert tree(tmp_path) == before and not marker.exists()


@pytest.mark.parametrize("part", ["carried", "optimizer"])
def test_a_trainer_state_of_another_size_does_not_resume(place, capfd, part):
    tmp_path, sessions, put, marker = place
    obj = raw(sessions / "good" / "latest.pt")
    if part == "carried":
        obj["trainer"]["h"] = torch.zeros(1, 1, 32)
        reason = "incompatible carried state"
    else:
        state = obj["trainer"]["optimizer"]["state"]
        state[0]["exp_avg"] = torch.zeros(128, 5)
        reason = "incompatible optimizer state"
    bad = tmp_path / "files" / f"{part}.pt"
    bad.parent.mkdir(exist_ok=True)
    bad.write_bytes(sealed(obj))
    before = tree(tmp_path)
    rc, out, err = cli(capfd, "train", "--headless", "--resume", bad, "--sessions", sessions)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert str(bad) in err and reason in err, err
    assert tree(tmp_path) == before
