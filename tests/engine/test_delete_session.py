"""Deleting a session removes exactly one session folder inside the sessions folder: not
a path out of it, not a link, not a folder that is no session, not a live session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import FreqtuiError
from engine.store import lock
from engine.store.sessions import LATEST, check_deletable, delete_session


def fake_session(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / LATEST).write_bytes(b"a snapshot")
    return folder


def test_a_session_folder_is_deleted_and_its_neighbours_stay(tmp_path):
    root = tmp_path / "sessions"
    fake_session(root / "a")
    fake_session(root / "b")
    assert delete_session("a", root) == root / "a"
    assert sorted(p.name for p in root.iterdir()) == ["b"]


@pytest.mark.parametrize("name", ["", ".", "..", "../outside", "a/b", ".hidden", "/tmp"])
def test_names_that_are_no_plain_session_id_are_refused(tmp_path, name):
    root = tmp_path / "sessions"
    fake_session(root / ".hidden")
    fake_session(tmp_path / "outside")
    with pytest.raises(FreqtuiError, match="not a session id"):
        delete_session(name, root)
    assert (tmp_path / "outside" / LATEST).is_file() and (root / ".hidden" / LATEST).is_file()


def test_a_link_a_file_a_folder_with_folders_or_without_snapshot_are_refused(tmp_path):
    root = tmp_path / "sessions"
    target = fake_session(tmp_path / "precious")
    root.mkdir()
    os.symlink(target, root / "link")
    (root / "file").write_text("x")
    fake_session(root / "nested")
    (root / "nested" / "data").mkdir()
    (root / "empty").mkdir()
    for name, why in (
        ("link", "symbolic link"),
        ("file", "not a folder"),
        ("nested", "holds a folder"),
        ("empty", "holds no latest.pt"),
        ("missing", "no such session"),
    ):
        with pytest.raises(FreqtuiError, match=why):
            delete_session(name, root)
    assert (target / LATEST).is_file() and (root / "nested" / "data").is_dir()


def test_a_link_inside_a_session_is_removed_not_followed(tmp_path):
    root = tmp_path / "sessions"
    folder = fake_session(root / "a")
    target = fake_session(tmp_path / "precious")
    os.symlink(target / LATEST, folder / "previous.pt")
    delete_session("a", root)
    assert not folder.exists() and (target / LATEST).read_bytes() == b"a snapshot"


def test_a_session_this_process_runs_is_live_and_refused(tmp_path):
    root = tmp_path / "sessions"
    held = lock.acquire(fake_session(root / "a"))
    try:
        with pytest.raises(FreqtuiError, match="live"):
            check_deletable("a", root)
        assert (root / "a" / LATEST).is_file()
    finally:
        held.release()
    delete_session("a", root)
    assert not (root / "a").exists()
