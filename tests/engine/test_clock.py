"""Clock: full BPTT from t = 0 through per-block windows (a slide of the slow blocks' targets,
then growing windows), an S-amplitude curriculum, and a polish with a budget of its own."""

import io

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.model import build_model
from engine.signals import test_set, train_set
from engine.training import make_trainer, method_names


# k0 = 0.06 periods: windows of 20, 20, 12 and 9 rows (1 Hz at its raised 3 Hz target,
# 3, 5 and 7 Hz), so the tests run short steps
def trainer(duration=0.1, **options):
    options = {"t0": 20, "k0": 0.06, "epoch_sets": 5, **options}
    if "thr" in options:  # the stage at full S gates on `final_thr`: the same unless set
        options.setdefault("final_thr", options["thr"])
    config = RunConfig(
        method="clock",
        backend="torch",
        duration=duration,
        lr=3e-3,
        clip=1.0,
        epochs=1,
        options=options,
    ).validated()
    return make_trainer(build_model(config), config, train_set(config))


def spy_inputs(tr):
    seen = []
    orig = tr.model.forward

    def spy(x, state, _orig=orig, seen=seen):
        seen.append((x.detach().clone(), state[0].clone(), state[1].clone()))
        return _orig(x, state)

    tr.model.forward = spy
    return seen


def test_registered():
    assert "clock" in method_names()


def test_every_window_starts_at_t0_from_a_zero_state():
    tr = trainer()
    seen = spy_inputs(tr)
    tr.train_rows(1)
    x, h0, c0 = seen[0]
    assert x.shape == (4, 20, 5)  # 4 blocks, the longest window 20, [S, C1..C4]
    assert bool((h0 == 0).all()) and bool((c0 == 0).all())
    for i in range(4):
        assert bool((x[i, :, 1 + i] == 1).all())
    h, c = tr.carried_state
    assert h.grad_fn is None and c.grad_fn is None


def test_windows_are_k_periods_of_each_blocks_current_target():
    tr = trainer()
    assert tr.fcur.tolist() == [3.0, 3.0, 5.0, 7.0]  # the 1 Hz block starts at 3 Hz
    assert tr.windows().tolist() == [20, 20, 12, 9]
    x, y, lens = tr._batch()
    t = tr.t[:20]
    assert np.allclose(y[0, :20].numpy(), np.sin(2 * np.pi * 3.0 * t), atol=1e-6)
    assert torch.equal(y[1, :20], tr.targets[1, :20])  # a true target is the spec's own
    assert bool((y[3, 9:] == 0).all()) and lens.tolist() == [20, 20, 12, 9]


def test_the_slide_then_the_windows_then_s():
    """Every gate passes: the raised target slides 3 Hz -> 1 Hz by /1.15 a pass (landing on
    1 Hz exactly), only then do the windows grow (x grow a pass) to the whole block, and
    only then is S fed."""
    tr = trainer(thr=10.0, min_steps=1, grow=2.0, amp_step=0.5)  # every gate passes
    seen = spy_inputs(tr)
    f1, wins, amps = [], [], []
    for _ in range(20):
        tr.step()
        f1.append(float(tr.fcur[0]))
        wins.append(tr.windows().tolist())
        amps.append(tr.amp)
    slid = f1.index(1.0) + 1
    assert slid == 8  # 3 / 1.15**7 = 1.13, then 1 Hz itself
    assert f1[:slid] == sorted(f1[:slid], reverse=True)
    assert all(w[1:] == wins[0][1:] for w in wins[:slid])  # only the slow block's window moved
    assert wins[slid - 1] == [60, 20, 12, 9]  # 0.06 periods of 1 Hz
    assert wins[slid] == [100, 40, 24, 18]  # then k doubles, capped at the block (100 rows)
    first_amp = amps.index(0.5)
    assert wins[first_amp] == [100] * 4  # S is fed only once every window is whole
    assert tr.phase == "polish" and tr.curriculum_done and tr.amp == 1.0
    x = seen[-1][0]
    assert x.shape[1] == 100
    assert x[:, :, 0].abs().sum() > 0


def test_the_stage_at_full_s_is_gated_before_the_polish():
    """S fed at once can knock a block out of its oscillation: with `s_hold` the stage at
    full S has a gate of its own (`final_thr`) and the polish waits for it."""
    tr = trainer(thr=10.0, min_steps=1, grow=2.0, final_thr=0.0)  # nothing passes at full S
    for _ in range(30):
        tr.step()
    assert tr.amp == 1.0 and tr.windows().tolist() == [100] * 4
    assert tr.phase == "S" and not tr.curriculum_done and tr.done_at is None
    tr.o["final_thr"] = 10.0
    tr.step()
    assert tr.phase == "polish" and tr.curriculum_done
    old = trainer(thr=10.0, min_steps=1, grow=2.0, final_thr=0.0, s_hold=0)
    for _ in range(30):
        old.step()
    assert old.phase == "polish"  # without the hold, S at full amplitude starts the polish


def test_the_gate_judges_every_block_not_their_mean():
    tr = trainer(min_steps=1, thr=0.04)
    tr.step()
    before = tr.fcur.copy()
    tr.ema = None
    tr._advance(np.array([0.001, 0.001, 0.001, 0.12]), 0)  # mean 0.031 < thr 0.04
    assert tr.stages == 0 and np.array_equal(tr.fcur, before)
    tr.ema = None
    tr._advance(np.array([0.03, 0.03, 0.03, 0.03]), 0)
    assert tr.stages == 1 and tr.fcur[0] < before[0]


def test_amp0_feeds_fresh_noise_never_the_train_or_test_rows():
    tr = trainer(amp0=1.0, draws=2)
    seen = spy_inputs(tr)
    tr.train_rows(1)
    x = seen[0][0]
    assert x.shape[0] == 8  # 2 draws x 4 blocks
    S = x[:, :, 0].numpy()
    assert np.array_equal(S[0], S[3])  # the blocks of one draw share S, as in the data
    assert not np.array_equal(S[0], S[4])  # the draws differ
    for ref in (train_set(tr.config).S[:20], test_set(tr.config).S[:20]):
        assert not np.allclose(S[0], ref)


def test_amp_zero_feeds_no_s():
    tr = trainer()
    seen = spy_inputs(tr)
    tr.train_rows(1)
    assert bool((seen[0][0][:, :, 0] == 0).all())


def test_forget_bias_recipe_applies_once():
    tr = trainer(forget_bias=1.0)
    b0 = tr.model.lstm.bias_ih_l0.detach().clone()
    tr.optimizer.param_groups[0]["lr"] = 0.0  # isolate the init from the update
    tr.step()
    H = tr.model.hidden_size
    diff = tr.model.lstm.bias_ih_l0.detach() - b0
    assert torch.allclose(diff[H : 2 * H], torch.ones(H))
    assert torch.allclose(diff[:H], torch.zeros(H))
    tr.step()
    assert torch.allclose(tr.model.lstm.bias_ih_l0.detach() - b0, diff)


def test_epoch_position_and_rows():
    tr = trainer(epoch_sets=1)  # 400 rows
    chunk = tr.train_rows(1)
    assert chunk.rows == 61  # one step: each block its own window, 20 + 20 + 12 + 9 rows
    assert chunk.rows_by_block.tolist() == [20, 20, 12, 9]
    while tr.row < tr.rows_per_epoch:
        tr.train_rows(1000)
    assert tr.row == 400


def test_rate_anneals_to_zero_after_the_curriculum():
    tr = trainer(thr=10.0, min_steps=1, grow=10.0, amp_step=1.0, epoch_sets=6)
    lrs = []
    while tr.row < tr.rows_per_epoch:
        tr.train_rows(1)
        lrs.append(tr.optimizer.param_groups[0]["lr"])
    assert tr.curriculum_done and tr.done_at is not None
    after = lrs[-5:]
    assert after == sorted(after, reverse=True)
    assert lrs[-1] == 0.0


@pytest.mark.parametrize(
    "options",
    [
        {"t0": 0},
        {"grow": 1.0},
        {"slide": 1.0},
        {"k0": 0},
        {"slide_from": -1},
        {"polish": 0},
        {"retries": -1},
        {"amp0": 2.0},
        {"bogus": 1},
        {"thr": -1},
        {"draws": 0},
        {"anneal": 2},
    ],
)
def test_bad_options_are_refused(options):
    with pytest.raises(FreqtuiError):
        RunConfig(method="clock", options=options).validated()


def _roundtrip(d):
    buf = io.BytesIO()
    torch.save(d, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_resume_from_state_dict_is_exact():
    kw = {"thr": 10.0, "min_steps": 2, "grow": 2.0, "amp_step": 0.5, "draws": 2}
    a = trainer(**kw)
    for _ in range(5):
        a.step()
    saved_model = _roundtrip(a.model.state_dict())
    saved = _roundtrip(a.state_dict())
    b = trainer(**kw)
    b.model.load_state_dict(saved_model)
    b.load_state_dict(saved)
    for tr in (a, b):
        for _ in range(6):
            tr.step()
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert (a.horizon, a.amp, a.steps, a.k) == (b.horizon, b.amp, b.steps, b.k)
    assert np.array_equal(a.fcur, b.fcur) and a.stages == b.stages
    assert torch.equal(a.carried_state[0], b.carried_state[0])


def test_state_check_passes():
    tr = trainer()
    check = tr.state_check()
    assert check.passed, check.detail
    assert tr.steps == 0  # the check ran on a copy


def polish_trainer(backend="torch", **options):
    """A clock whose schedule passes at once: the polish from the second step on."""
    config = RunConfig(
        method="clock",
        backend=backend,
        duration=0.05,
        epochs=1,
        # whole windows from the start (no raised target): the first step passes the
        # stage at S = 0, the second the stage at full S, and the polish starts
        options={
            "epoch_sets": 20,
            "thr": 10,
            "final_thr": 10,
            "min_steps": 1,
            "val_every": 1,
            "k0": 100.0,
            "slide_from": 0.5,
            **options,
        },  # fmt: skip
    ).validated()
    return make_trainer(build_model(config), config, train_set(config))


def run_to_end(tr):
    while not tr.finished:
        tr.train_rows(10_000)
        if tr.row >= tr.rows_per_epoch:
            tr.end_epoch()


def test_polish_selects_the_best_weights_on_the_validation_draw():
    from engine.evaluation import frozen_mse
    from engine.signals import for_config

    tr = polish_trainer()
    run_to_end(tr)
    assert tr.phase == "polish" and tr.selected in ("best", "final")
    val = frozen_mse(tr.model, for_config(tr.config, tr.o["val_seed"])).overall
    assert val == pytest.approx(tr.best_val, rel=1e-6)  # the model holds the best it saw
    if tr.selected == "best":
        for k, v in tr.model.state_dict().items():
            assert torch.equal(v, tr.best_model[k])
        assert "validation" in tr.weights_note() and f"{tr.best_at:,}" in tr.weights_note()


def test_a_step_that_falls_off_goes_back_to_the_best_weights_and_halves_the_rate():
    tr = polish_trainer(epoch_sets=50)
    while tr.best_val is None:
        tr.train_rows(1)
    best = {k: v.clone() for k, v in tr.best_model.items()}
    with torch.no_grad():  # a step that fell far off: the output is wrecked
        tr.model.fc.bias.add_(5.0)
    mult = tr.lr_mult
    tr._validate()
    assert tr.rollbacks == 1 and tr.lr_mult == mult / 2
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, best[k])


def stalled(**options):
    """A clock past its first stage, at a stall check (the test sets its ema by hand)."""
    options = {"trap": 0.1, **options}  # the stall's rules below are read against 0.1
    tr = trainer(duration=0.2, thr=10.0, min_steps=1, **options)
    tr.step()  # the first stage passes: its weights are kept
    assert tr.stages == 1 and tr.passed_model is not None
    tr.o["thr"] = 0.0  # nothing passes from here on
    tr.step()
    return tr


def test_a_stalled_horizon_close_to_passing_halves_the_rate():
    tr = stalled()
    lr0 = tr.lr
    tr.ema = np.full(4, 0.05)  # every block below trap (0.1), none passing thr (0.04)
    tr._stalled()
    assert tr.lr_mult == 0.5 and tr.lr == pytest.approx(lr0 / 2) and tr.restarts == 0
    for _ in range(10):
        tr.ema = np.full(4, 0.05)
        tr._stalled()
    assert tr.lr_mult == tr.o["min_lr_mult"]  # never below the floor


def test_a_block_caught_in_a_trap_goes_back_to_the_last_stage_passed_then_starts_afresh():
    def trapped():
        tr = stalled()
        passed = {k: v.clone() for k, v in tr.passed_model.items()}
        fcur = tr.fcur.copy()
        tr.ema = np.array([0.33, 0.01, 0.01, 0.01])  # f1 still above trap (0.1)
        tr._stalled()
        # first: back to the weights of the stage passed, at half the rate, same stage
        assert tr.stage_rollbacks == 1 and tr.restarts == 0 and tr.lr_mult == 0.5
        assert np.array_equal(tr.fcur, fcur)
        for k, v in tr.model.state_dict().items():
            assert torch.equal(v, passed[k])
        assert tr.last_event.startswith("rollback 1: the 1 Hz block stalled at 0.33")
        tr.step()
        tr.ema = np.array([0.33, 0.01, 0.01, 0.01])
        tr._stalled()  # caught again at the same stage: a fresh start
        return tr

    tr, twin = trapped(), trapped()
    assert tr.restarts == 1 and tr.lr_mult == 1.0 and tr.stages == 0
    assert tr.fcur.tolist() == [3.0, 3.0, 5.0, 7.0] and tr.windows().tolist() == [20, 20, 12, 9]
    assert tr.last_event.startswith("restart 1: the 1 Hz block")
    for a, b in zip(tr.model.state_dict().values(), twin.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the fresh start is the same for the same torch seed
    assert tr.state_dict()["restarts"] == 1
    assert any(k == "restarts" and "restart 1: the 1 Hz block" in v for k, v in tr.schedule())


@pytest.mark.parametrize("seed", [1, 2])
def test_the_validation_draw_is_never_the_train_or_test_set(seed):
    with pytest.raises(FreqtuiError, match="val_seed"):
        trainer(val_seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("windows", ["whole", "per block"])
def test_fused_and_torch_clock_steps_agree(windows):
    """Three clock steps (block weights, S penalty, clip, Adam) on both backends from the
    same weights. This checks the wiring (the kernel's arithmetic is pinned to 1e-9 in
    float64 by test_window_kernel.py): a wrong stream weight, a missing penalty or another
    clip moves weights by O(lr) a step, while the two float32 paths were measured 8e-4·lr
    apart (Adam turns tiny gradient differences of near-zero gradients into update
    differences), so the bound is 0.02·lr."""
    pytest.importorskip("numba")
    runs = {}
    for backend in ("torch", "fused"):
        if windows == "whole":
            tr = polish_trainer(backend=backend, block_weight=1.0, s_decay=1e-2)
        else:  # the first stage: windows of 20, 20, 12 and 9 rows, the loss masked beyond
            tr = trainer(k0=0.06, s_decay=1e-2)
            tr.config = tr.config.replace(backend=backend)
            tr._stepper = tr.fused_window()
            assert tr.windows().tolist() == [20, 20, 12, 9]
        assert tr.backend == backend
        for _ in range(3):
            tr.step()
        runs[backend] = tr
    lr = runs["torch"].config.lr
    for (k, a), b in zip(
        runs["torch"].model.state_dict().items(),
        runs["fused"].model.state_dict().values(),
        strict=True,
    ):
        assert torch.allclose(a, b, rtol=0, atol=0.02 * lr), k
    assert np.allclose(runs["torch"].ema, runs["fused"].ema, rtol=1e-4)


def test_an_earlier_clock_schedule_evaluates_but_does_not_resume():
    tr = trainer()
    d = tr.state_dict()
    d.pop("schedule_version")
    with pytest.raises(FreqtuiError, match="earlier clock schedule"):
        trainer().load_state_dict(d)


def test_a_start_without_an_oscillation_starts_afresh():
    tr = trainer(duration=0.2, thr=0.0, first_steps=4, min_steps=1)
    w0 = tr.model.lstm.weight_hh_l0.detach().clone()
    for _ in range(4):
        tr.step()
    assert tr.restarts == 1
    assert not torch.allclose(tr.model.lstm.weight_hh_l0, w0, atol=0.05)


def test_the_polish_has_its_own_budget_whatever_the_curriculum_took():
    """The run ends `polish` epochs after the epoch in which the curriculum ended, however
    many epochs the curriculum (and a fresh start in it) took; --epochs only caps it."""

    def run(stall_epochs: int, cap: int = 50) -> tuple[int, int, list[float]]:
        config = RunConfig(
            method="clock", backend="torch", duration=0.05, epochs=cap,
            options={"k0": 0.06, "epoch_sets": 10, "min_steps": 1, "thr": 0.0, "polish": 2},
        ).validated()  # fmt: skip
        tr = make_trainer(build_model(config), config, train_set(config))
        lrs = []
        while not tr.finished:
            if tr.epoch == stall_epochs // 2 and tr.row == 0 and tr.restarts == 0:
                tr._restart("a test's fresh start")  # a restart in the curriculum
            if tr.epoch >= stall_epochs:
                tr.o["thr"] = 10.0  # from here every gate passes
            tr.train_rows(1)
            if tr.done_at is not None:
                lrs.append(tr.lr)
            if tr.row >= tr.rows_per_epoch:
                tr.end_epoch()
        return tr.done_at // tr.rows_per_epoch, tr.epoch, lrs

    for stall in (2, 6):
        done_epoch, end, lrs = run(stall)
        assert done_epoch == stall and end == done_epoch + 1 + 2  # the polish: 2 epochs more
        assert lrs[-1] == 0.0 and max(lrs) > 0  # its anneal ends at its own end
    _, end, _ = run(6, cap=7)
    assert end == 7  # --epochs caps the whole run


def test_the_run_length_is_shown_as_planned():
    tr = trainer(thr=10.0, min_steps=1, polish=3, epoch_sets=1)
    tr.config = tr.config.replace(epochs=40)
    assert tr.planned_epochs == 1 + 3  # the least it can be while the curriculum runs
    while tr.done_at is None:
        tr.train_rows(1)
        if tr.row >= tr.rows_per_epoch:
            tr.end_epoch()
    assert tr.planned_epochs == tr.done_at // tr.rows_per_epoch + 1 + 3
    assert tr.state_dict()["planned_epochs"] == tr.planned_epochs


def test_a_finished_polish_resumed_with_more_epochs_trains_on():
    """`--resume ID --epochs N` after the polish ended: the polish goes on to epoch N (the
    resume command a finished run prints must train something)."""
    config = RunConfig(
        method="clock", backend="torch", duration=0.05, epochs=60,
        options={"k0": 100.0, "slide_from": 0.5, "epoch_sets": 1, "min_steps": 1, "thr": 10.0,
                 "polish": 1},
    ).validated()  # fmt: skip
    tr = make_trainer(build_model(config), config, train_set(config))
    while not tr.finished:
        tr.train_rows(10_000)
        if tr.row >= tr.rows_per_epoch:
            tr.end_epoch()
    end = tr.planned_epochs
    assert tr.epoch == end == tr.done_at // tr.rows_per_epoch + 1 + 1  # curriculum, polish
    saved_model, saved = _roundtrip(tr.model.state_dict()), _roundtrip(tr.state_dict())
    more = make_trainer(build_model(config), config.replace(epochs=end + 2), train_set(config))
    more.model.load_state_dict(saved_model)
    more.load_state_dict(saved)
    assert not more.finished and more.planned_epochs == end + 2
    assert f"ends with epoch {end + 2} instead of {end}" in more.length_change_note(60, end + 2)
    same = make_trainer(build_model(config), config, train_set(config))
    same.load_state_dict(saved)
    assert same.finished  # the same length: nothing more to train


def test_a_new_length_during_the_curriculum_is_said_without_a_flag_name():
    # the engine says what changes; the caller names its own word for the length first
    # (run.py: "--epochs 60 (was 50): ..." for the CLI)
    config = RunConfig(method="clock", duration=0.05, backend="torch").validated()
    tr = make_trainer(build_model(config), config, train_set(config))
    note = tr.length_change_note(50, 60)
    assert "must now end by epoch 60 instead of 50" in note and "--" not in note
