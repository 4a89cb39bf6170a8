"""Clock: full BPTT from t = 0 over a growing horizon, with an S-amplitude curriculum."""

import io

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.model import build_model
from engine.signals import test_set, train_set
from engine.training import make_trainer, method_names


def trainer(duration=0.1, **options):
    options = {"t0": 20, "epoch_sets": 5, **options}
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
    assert x.shape == (4, 20, 5)  # 4 blocks, horizon 20, [S, C1..C4]
    assert bool((h0 == 0).all()) and bool((c0 == 0).all())
    for i in range(4):
        assert bool((x[i, :, 1 + i] == 1).all())
    h, c = tr.carried_state
    assert h.grad_fn is None and c.grad_fn is None


def test_horizon_grows_then_amplitude_rises_to_one():
    tr = trainer(thr=10.0, min_steps=2, grow=2.0, amp_step=0.5)  # every gate passes
    seen = spy_inputs(tr)
    horizons, amps = [], []
    for _ in range(12):
        tr.step()
        horizons.append(tr.horizon)
        amps.append(tr.amp)
    assert horizons[-1] == 100  # capped at the block length
    assert horizons == sorted(horizons)
    first_amp = amps.index(0.5)
    assert horizons[first_amp] == 100  # S is fed only once the horizon is complete
    assert amps[-1] == 1.0
    assert tr.curriculum_done
    x = seen[-1][0]
    assert x.shape[1] == 100
    assert x[:, :, 0].abs().sum() > 0


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
    assert chunk.rows == 80  # one step: 4 blocks x 20 rows
    assert chunk.rows_by_block.tolist() == [20, 20, 20, 20]
    while tr.row < tr.rows_per_epoch:
        tr.train_rows(1000)
    assert tr.row == 400


def test_rate_anneals_to_zero_after_the_curriculum():
    tr = trainer(thr=10.0, min_steps=1, grow=10.0, amp_step=1.0, epoch_sets=3)
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
    assert (a.horizon, a.amp, a.steps) == (b.horizon, b.amp, b.steps)
    assert torch.equal(a.carried_state[0], b.carried_state[0])


def test_state_check_passes():
    tr = trainer()
    check = tr.state_check()
    assert check.passed, check.detail
    assert tr.steps == 0  # the check ran on a copy
