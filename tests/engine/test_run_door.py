"""The engine's one door to a session (engine/run.py TrainingRun): a resume refuses a
change that would alter the science, naming the field (or the caller's word for it);
`claim` owns the session before the first row; `hand_over` locks the next session before
it lets the old one go, and on any failure the old run keeps its session."""

import dataclasses
import fcntl
import os
import threading

import pytest
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from engine.store import lock, sessions


def saved_run(root, **kw) -> TrainingRun:
    cfg = RunConfig(method="handoff", backend="torch", duration=0.05, epochs=2, **kw)
    run = TrainingRun(cfg.validated(), sessions_root=root, state_check=False)
    run.save_snapshot()
    return run


def folder(run: TrainingRun):
    return run.sessions_root / run.run_id


def test_a_resume_names_the_field_it_refuses_and_lets_epochs_grow(tmp_path):
    run = saved_run(tmp_path)
    with pytest.raises(FreqtuiError, match=r"^hidden-size cannot change when resuming .*was"):
        TrainingRun.resume(run.run_id, changes={"hidden_size": 32}, root=tmp_path)
    # the caller's word for a field (the CLI's flags), and what may change said in it
    with pytest.raises(FreqtuiError, match=r"^--lr cannot change .* only --epochs may change"):
        TrainingRun.resume(
            run.run_id,
            changes={"lr": 0.5},
            names={"lr": "--lr", "epochs": "--epochs"},
            root=tmp_path,
        )
    with pytest.raises(FreqtuiError, match=r"^options cannot change .*no options"):
        TrainingRun.resume(run.run_id, changes={"options": {"k": 3}}, root=tmp_path)
    with pytest.raises(FreqtuiError, match=r"^epochs 0: .*completed 0 of its 2"):
        TrainingRun.resume(run.run_id, changes={"epochs": 0}, root=tmp_path)
    # the saved values, and fields not asked for (None), are no change; epochs may grow
    same = TrainingRun.resume(
        run.run_id,
        changes={"lr": run.config.lr, "hidden_size": None, "options": {}, "epochs": 5},
        root=tmp_path,
    )
    assert same.config == run.config.replace(epochs=5)
    assert same.run_id == run.run_id


def test_claim_owns_the_session_and_a_second_owner_is_refused(tmp_path):
    run = saved_run(tmp_path)
    held = run.claim()
    try:
        assert lock.held_here(folder(run))
        assert (folder(run) / ".lock").read_text().strip() == str(os.getpid())
    finally:
        run.release()
    assert not lock.held_here(folder(run)) and held.folder == lock.folder_key(folder(run))


def other_process_holds(path) -> int:
    """A lock on `path` as another process's would be: a second open file, flocked."""
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_hand_over_locks_the_new_session_then_frees_the_old(tmp_path):
    old, target = saved_run(tmp_path), saved_run(tmp_path, torch_seed=7)
    old.claim()
    stopped = []
    new = old.hand_over(target.run_id, stop=lambda: stopped.append(True))
    assert stopped == [True]
    assert new.run_id == target.run_id and new.config.torch_seed == 7
    assert lock.held_here(folder(new)) and not lock.held_here(folder(old))
    new.release()


def test_a_hand_over_to_its_own_session_continues_what_the_stop_saved(tmp_path):
    run = saved_run(tmp_path)
    run.claim()

    def stop() -> None:  # what the console's stop does: the newest state goes to disk
        run.history.rows_total += 123
        run.save_snapshot("switch")

    new = run.hand_over(run.run_id, stop=stop)
    assert new.run_id == run.run_id and new.history.rows_total == 123
    assert lock.held_here(folder(run))  # the same session goes on, still owned
    new.release()


def test_a_hand_over_that_fails_keeps_the_old_session_locked(tmp_path):
    old = saved_run(tmp_path)
    old.claim()
    stopped = []

    def stop() -> None:
        stopped.append(True)

    # a session another process runs: refused before anything stops
    busy = saved_run(tmp_path, torch_seed=3)
    fd = other_process_holds(folder(busy))
    try:
        with pytest.raises(FreqtuiError, match="is in use by process"):
            old.hand_over(busy.run_id, stop=stop)
    finally:
        os.close(fd)
    # a file that is no snapshot: refused before anything stops
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a snapshot")
    with pytest.raises(FreqtuiError, match="junk.pt"):
        old.hand_over(junk, stop=stop)
    assert stopped == [] and lock.held_here(folder(old))
    # a snapshot that reads but cannot be resumed: found out after the stop; the target's
    # lock goes again and the old run keeps its own
    broken = saved_run(tmp_path, torch_seed=5)
    snap = sessions.read_snapshot(folder(broken) / "latest.pt")
    h = torch.zeros(2, 1, broken.config.hidden_size)  # two layers' state for a model of one
    sessions.write_snapshot(
        folder(broken), dataclasses.replace(snap, trainer={**snap.trainer, "h": h})
    )
    with pytest.raises(FreqtuiError, match="incompatible carried state"):
        old.hand_over(broken.run_id, stop=stop)
    assert stopped == [True]
    assert lock.held_here(folder(old)) and not lock.held_here(folder(broken))
    old.release()


def test_a_hand_over_is_refused_while_the_old_trainer_cannot_stop(tmp_path):
    # a trainer stuck in a step outlives stop(): handing over then would let its late save
    # land beside the new run's; the old run keeps its session and the target stays free
    old, target = saved_run(tmp_path), saved_run(tmp_path, torch_seed=7)
    old.claim()
    stuck, release = threading.Event(), threading.Event()
    train_rows = old.trainer.train_rows

    def stuck_step(n):
        stuck.set()
        release.wait(60)
        return train_rows(n)

    old.trainer.train_rows = stuck_step
    old.start()
    try:
        assert stuck.wait(60)
        with pytest.raises(FreqtuiError, match="did not stop in time"):
            old.hand_over(target.run_id, stop=lambda: old.stop(timeout=0.2))
        assert old.alive
        assert lock.held_here(folder(old)) and not lock.held_here(folder(target))
    finally:
        release.set()
        old.join(30)
    assert not old.alive
    old.release()
