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
