"""Exact resume: a run that stops, saves and continues ends bit for bit where an
uninterrupted run ends: weights, optimizer state, carried (h, c), position and RNGs.

Every method in `engine.training.method_names()` is picked up, on every backend it accepts.
"""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from engine import events as ev
from engine.config import BACKENDS, RunConfig
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from engine.store.files import read_file
from engine.store.sessions import list_sessions
from engine.training import get_method, method_names

REPO = Path(__file__).resolve().parents[2]

# options that keep a method fast on a 0.1 s signal; a method not listed runs its defaults
FAST_OPTIONS: dict[str, dict] = {
    "tbptt": {"k": 16},  # windows of 16 rows
    # 5 steps of 200 rows an epoch; the schedule passes at once into the polish, where
    # the validation draw, the best weights, rollbacks and the final selection all resume
    "clock": {"epoch_sets": 5, "thr": 10, "min_steps": 1, "val_every": 1},
}


def tiny_config(method: str, backend: str, **kw) -> RunConfig:
    return RunConfig(
        method=method,
        backend=backend,
        duration=0.05,  # 50 rows a block, 200 an epoch
        epochs=2,
        options=dict(FAST_OPTIONS.get(method, {})),
        **kw,
    ).validated()


def method_backends():
    cases = []
    for method in method_names():
        for backend in BACKENDS:
            try:
                tiny_config(method, backend)
            except FreqtuiError:
                continue  # this method refuses this backend: nothing to resume
            cases.append(pytest.param(method, backend, id=f"{method}-{backend}"))
    return cases


# Runs in fresh interpreters. "first" trains to position N straight in one run, then, for
# each k, to position k in another run and saves a snapshot; "rest" is a new process that
# resumes each snapshot and trains on to N. Positions are rows since the start (epoch *
# rows_per_epoch + row), given as fractions of an epoch: a method may train many rows per
# step (a window, a horizon), so each run stops at the first step boundary at or past its
# target, the same boundary for the straight and the split run. Each dumps run.capture().
# One "first" and one "rest" process serve every method and backend (a list of specs, each
# seeding its own runs): a process per case would only add starts of Python and torch.
DRIVER = r"""
import json, sys, torch
torch.set_num_threads(1)
from engine.config import RunConfig
from engine.run import TrainingRun

def train(run, fraction):
    tr = run.trainer
    target = round(fraction * tr.rows_per_epoch)
    while not tr.finished:
        left = target - (tr.epoch * tr.rows_per_epoch + tr.row)
        if left <= 0:
            break
        with run.locked():
            tr.train_rows(min(spec["chunk"], left))
            if tr.row >= tr.rows_per_epoch:
                tr.end_epoch()

mode = sys.argv[1]
for case, spec in json.loads(sys.argv[2]).items():
    if mode == "first":
        config = RunConfig.from_dict(spec["config"])
        torch.manual_seed(spec["seed"])
        straight = TrainingRun(config, sessions_root=spec["root"], state_check=False)
        train(straight, spec["n"])
        torch.save(straight.capture(), spec["straight"])
        for k in spec["ks"]:
            torch.manual_seed(spec["seed"])
            part = TrainingRun(config, sessions_root=spec["root"], run_id=f"split{k}", state_check=False)
            train(part, k)
            print(json.dumps([case, str(part.save_snapshot("test")), part.trainer.rows_per_epoch]))
    else:
        for k in spec["ks"]:
            torch.manual_seed(spec["seed"] + k)  # unlike the saved run: the snapshot restores it
            run = TrainingRun.resume(f"split{k}", root=spec["root"])
            assert run.trainer.epoch * run.trainer.rows_per_epoch + run.trainer.row >= round(
                k * run.trainer.rows_per_epoch
            )
            assert run.run_id == f"split{k}", run.run_id
            train(run, spec["n"])
            torch.save(run.capture(), spec["resumed"] + str(k))
"""


def drive(mode: str, specs: dict[str, dict]) -> str:
    r = subprocess.run(
        [sys.executable, "-c", DRIVER, mode, json.dumps(specs)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def assert_bitwise_equal(a, b, where="state"):
    """Tensors equal byte for byte (dtype, shape, bits); plain values equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        ab = a.detach().contiguous().reshape(-1).view(torch.uint8)
        bb = b.detach().contiguous().reshape(-1).view(torch.uint8)
        assert torch.equal(ab, bb), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for k in a:
            assert_bitwise_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_bitwise_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def science(capture: dict) -> dict:
    """What must continue exactly (the history's timing and trace are not science)."""
    return {k: capture[k] for k in ("config", "model", "trainer", "torch_rng")}


N = 1.3  # in epochs: crosses an epoch boundary
KS = [0.35, 1.0]  # mid-epoch, and exactly at the epoch's end


@pytest.fixture(scope="module")
def split_runs(tmp_path_factory) -> dict[str, dict]:
    """Every method and backend trained straight to N and split at each k in one "first"
    process, each split resumed to N in one "rest" process: per case its spec and, per k,
    the snapshot path and the rows of an epoch the "first" process printed."""
    specs = {}
    for param in method_backends():
        method, backend = param.values
        folder = tmp_path_factory.mktemp(f"{method}-{backend}")
        specs[param.id] = {
            "config": tiny_config(method, backend).to_dict(),
            "root": str(folder / "sessions"),
            "seed": 1234,
            "chunk": 32,
            "n": N,
            "ks": KS,
            "straight": str(folder / "straight.pt"),
            "resumed": str(folder / "resumed.pt"),
        }
    saved: dict[str, list] = {case: [] for case in specs}
    for line in drive("first", specs).splitlines():
        case, path, rows_per_epoch = json.loads(line)
        saved[case].append([path, rows_per_epoch])
    drive("rest", specs)
    return {case: {"spec": specs[case], "saved": saved[case]} for case in specs}


@pytest.mark.slow
@pytest.mark.parametrize("method, backend", method_backends())
def test_resume_in_a_new_process_is_bitwise_identical(split_runs, method, backend):
    case = split_runs[f"{method}-{backend}"]
    spec, saved = case["spec"], case["saved"]
    n, ks, root = spec["n"], spec["ks"], Path(spec["root"])
    assert [s[0] for s in saved] == [str(root / f"split{k}" / "latest.pt") for k in ks]
    rows_per_epoch = saved[0][1]
    straight = torch.load(spec["straight"], weights_only=True)
    assert straight["trainer"]["epoch"] == 1 and 0 < straight["trainer"]["row"] < rows_per_epoch
    for k, (snapshot, _) in zip(ks, saved, strict=True):
        resumed = torch.load(spec["resumed"] + str(k), weights_only=True)
        assert_bitwise_equal(science(straight), science(resumed), f"k={k}")
        # and the snapshot really held an earlier state
        old = read_file(Path(snapshot))
        position = old["trainer"]["epoch"] * rows_per_epoch + old["trainer"]["row"]
        assert round(k * rows_per_epoch) <= position < round(n * rows_per_epoch)
        assert not torch.equal(old["model"]["fc.weight"], straight["model"]["fc.weight"])


def run_to_end(run: TrainingRun, during=None) -> list[ev.Event]:
    """Start a run, call `during(run, events)` while it runs, join, return its events."""
    events: list[ev.Event] = []
    run.start()
    if during is not None:
        during(run, events)
    run.join(120)
    assert not run.alive
    events += run.drain()
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert not failed, failed
    return events


def wait_for(run: TrainingRun, events: list, kind) -> None:
    while not any(isinstance(e, kind) for e in events):
        alive = run.alive
        events += run.drain()
        assert alive or any(isinstance(e, kind) for e in events), f"the run ended: no {kind}"
        threading.Event().wait(0.005)


def pause_at_row(run: TrainingRun, row: int) -> None:
    """Ask for a pause from inside the worker once `row` rows of the first epoch are done,
    so the pause lands mid-run however fast or loaded the machine is."""
    train_rows = run.trainer.train_rows
    asked = threading.Event()

    def hooked(n):
        chunk = train_rows(n)
        if not asked.is_set() and run.trainer.epoch == 0 and run.trainer.row >= row:
            asked.set()
            run.pause()
        return chunk

    run.trainer.train_rows = hooked


@pytest.mark.parametrize("method, backend", method_backends())
def test_pause_and_resume_in_one_process_is_bitwise_identical(tmp_path, method, backend):
    config = tiny_config(method, backend)
    torch.manual_seed(7)
    straight = TrainingRun(config, sessions_root=tmp_path, state_check=False)
    run_to_end(straight)

    def pause_save_resume(run, events):
        wait_for(run, events, ev.Paused)
        tr = run.trainer
        paused_at = (tr.epoch, tr.row)
        assert tr.epoch * tr.rows_per_epoch + tr.row >= 60 and not tr.finished  # mid-run
        threading.Event().wait(0.05)
        assert (tr.epoch, tr.row) == paused_at  # paused means paused
        run.save_snapshot("key")  # saving while paused must not disturb the run
        run.unpause()
        wait_for(run, events, ev.Resumed)
        run.save_snapshot("key")  # nor saving from another thread while it trains

    torch.manual_seed(7)
    paused = TrainingRun(config, sessions_root=tmp_path, state_check=False)
    pause_at_row(paused, 60)
    events = run_to_end(paused, pause_save_resume)
    assert sum(isinstance(e, ev.SnapshotSaved) for e in events) == 2
    assert straight.trainer.finished and paused.trainer.finished
    assert_bitwise_equal(science(straight.capture()), science(paused.capture()))


def test_a_resumed_run_keeps_its_id_history_and_saves_in_the_same_folder(tmp_path):
    config = tiny_config("handoff", "torch", lr=3e-3)
    run = TrainingRun(
        config, sessions_root=tmp_path, autosave_every=150, save_on_end=True, state_check=False
    )
    events = run_to_end(run)
    saves = [e for e in events if isinstance(e, ev.SnapshotSaved)]
    assert [e.reason for e in saves].count("autosave") >= 2  # 400 rows, every 150
    assert saves[-1].reason == "end"
    folder = tmp_path / run.run_id
    assert sorted(p.name for p in folder.iterdir()) == ["latest.json", "latest.pt", "previous.pt"]
    assert run.run_id.endswith("-handoff") and len(run.run_id.split("-")[0]) == 8

    info = list_sessions(tmp_path)
    assert len(info) == 1 and info[0].id == run.run_id and info[0].finished
    assert info[0].frozen_mse_test == run.history.evals[-1].test.overall

    # train one epoch further from the finished session
    more = TrainingRun.resume(run.run_id, epochs=3, root=tmp_path)
    assert more.run_id == run.run_id and more.sessions_root == tmp_path
    assert more.history.evals == run.history.evals
    assert more.history.online == run.history.online
    assert more.history.rows_total == 400
    assert more.trainer.epoch == 2 and not more.trainer.finished
    run_to_end(more)
    assert more.history.rows_total == 600 and len(more.history.evals) == 3
    path = more.save_snapshot()
    assert path == folder / "latest.pt"
    assert read_file(folder / "previous.pt")["trainer"]["epoch"] == 2  # the save before


def test_every_registered_method_is_covered():
    # a new method module is picked up by the tests above without editing them
    cases = {p.values[0] for p in method_backends()}
    assert cases == set(method_names())
    for name in method_names():
        assert get_method(name).method == name


@pytest.mark.parametrize("evaluated", [False, True])
def test_a_snapshot_taken_at_the_end_of_an_epoch_resumes_without_repeats(tmp_path, evaluated):
    config = tiny_config("handoff", "torch").replace(epochs=1)
    run = TrainingRun(config, sessions_root=tmp_path, state_check=False)
    run.trainer.train_rows(run.trainer.rows_per_epoch)  # the epoch's rows, not yet ended
    run.history.rows_total = run.trainer.rows_per_epoch
    if evaluated:
        run._evaluate()  # noqa: SLF001 - the worker's epoch-end evaluation, before end_epoch
    run.save_snapshot()
    resumed = TrainingRun.resume(run.run_id, root=tmp_path)
    events = run_to_end(resumed)
    assert resumed.trainer.finished and resumed.history.rows_total == 200
    assert not any(isinstance(e, ev.EpochDone) for e in events)  # no epoch of zero rows
    assert sum(isinstance(e, ev.EvalDone) for e in events) == (0 if evaluated else 1)
    assert len(resumed.history.evals) == 1  # one frozen evaluation per epoch end


def test_building_a_resumed_run_leaves_the_process_torch_rng_alone(tmp_path):
    run = TrainingRun(tiny_config("handoff", "torch"), sessions_root=tmp_path, state_check=False)
    torch.manual_seed(11)
    saved_rng = torch.random.get_rng_state()
    run.save_snapshot()
    torch.manual_seed(12)  # another run of this process draws meanwhile
    before = torch.random.get_rng_state()
    resumed = TrainingRun.resume(run.run_id, root=tmp_path)
    assert torch.equal(torch.random.get_rng_state(), before)
    # until its worker starts, a save carries the snapshot's RNG state, not the process's
    assert torch.equal(resumed.capture()["torch_rng"], saved_rng)
    run_to_end(resumed)
    assert resumed.finished
