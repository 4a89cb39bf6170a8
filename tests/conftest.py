import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # an L = 1 step is far too small for intra-op threads; they only add contention
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _sessions_in_tmp(tmp_path, monkeypatch):
    # runs save snapshots (headless runs always do): keep them out of the repo's sessions/;
    # subprocesses inherit the variable
    monkeypatch.setenv("FREQTUI_SESSIONS", str(tmp_path / "sessions"))


# ---- one trained session for the whole test run ----------------------------------------
# A finished one-epoch headless run (a 0.2 s signal, 800 rows, hand-off on torch), saved
# by a real `freqtui train --headless` process as a user's run saves it. Made once per
# test session: tests that only need "a session on disk" copy it (`copy_session`) instead
# of each paying for a process, torch's start-up and an epoch of their own.
TRAINED_FLAGS = ["--duration", "0.2", "--method", "handoff", "--backend", "torch", "--epochs", "1"]


@pytest.fixture(scope="session")
def trained_session(tmp_path_factory) -> tuple[Path, str]:
    """(sessions folder, run id) of the shared finished session; never write into it."""
    sessions = tmp_path_factory.mktemp("trained") / "sessions"
    r = subprocess.run(
        [sys.executable, "-m", "freqtui.cli", "train", "--headless"]
        + ["--sessions", str(sessions), *TRAINED_FLAGS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (folder,) = [p for p in sessions.iterdir() if p.is_dir()]
    return sessions, folder.name


@pytest.fixture
def copy_session(trained_session):
    """copy_session(sessions) copies the shared session into `sessions` (times kept, so
    its sidecar still matches its snapshot) and returns its run id."""
    src, run_id = trained_session

    def copy(sessions: Path) -> str:
        shutil.copytree(src / run_id, sessions / run_id)
        return run_id

    return copy


# ---- the longest files first ----------------------------------------------------------
# `pytest -n 2 --dist loadfile --no-loadscope-reorder` hands whole files to the two workers
# in collection order, the next file to whichever is free (without the last flag xdist
# sorts files by their number of tests, and this order is lost). Started last, a long file
# leaves one worker alone at the end (both sweep files once fell to one worker: 250 s of
# its 380 s); started first, the short ones fill in around it. Wall seconds each took in a
# `-n 2` run (2026-12-07), longest first (a scheduling hint only: a file missing here
# runs in its usual place).
LONGEST_FIRST = [
    "tests/cli/test_sweep_lockdown.py",  # 69 s
    "tests/engine/test_fused.py",  # 65 s
    "tests/cli/test_sweep.py",  # 56 s
    "tests/cli/test_stop_signals.py",  # 24 s
    "tests/cli/test_serve_guard.py",  # 20 s
    "tests/tui/test_console_truth.py",  # 15 s
    "tests/cli/test_terminal_gone.py",  # 13 s
    "tests/cli/test_outputs_are_files.py",  # 13 s
    "tests/browser/test_serve.py",  # 13 s
]


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
