"""Truncated BPTT: windows of K rows in time order, state carried, exact resume."""

import io

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.model import build_model
from engine.signals import train_set
from engine.training import make_trainer, method_names
from engine.training.tbptt import TbpttTrainer


def trainer(duration=0.1, **options):
    config = RunConfig(method="tbptt", backend="torch", duration=duration, options=options)
    config = config.validated()
    return make_trainer(build_model(config), config, train_set(config))


def test_registered():
    assert "tbptt" in method_names()


def test_windows_are_whole_and_do_not_cross_blocks():
    tr = trainer(k=30)  # 100 rows a block: windows 30, 30, 30, 10
    sizes = []
    while tr.row < tr.rows_per_epoch:
        sizes.append(tr.train_rows(1).rows)
    assert sizes == [30, 30, 30, 10] * 4
    assert tr.row == 400


def test_chunk_trains_whole_windows_up_to_max_rows():
    tr = trainer(k=30)
    chunk = tr.train_rows(75)
    assert chunk.rows == 60  # two whole windows fit, a third would pass 75
    assert chunk.rows_by_block.tolist() == [60, 0, 0, 0]
    assert len(chunk.live_output) == 60


def test_state_is_detached_between_calls_and_carried():
    tr = trainer(k=20)
    tr.train_rows(20)
    h, c = tr.carried_state
    assert h.grad_fn is None and c.grad_fn is None
    assert h.abs().sum() > 0  # carried, not reset


def test_reset_block_zeroes_state_at_block_start_and_carry_does_not():
    for reset, zero in (("block", True), ("carry", False)):
        tr = trainer(k=100, reset=reset)
        tr.train_rows(100)  # the whole first block
        h_end = tr.carried_state[0].clone()
        # the next window starts block 1 from zero (block) or from h_end (carry)
        captured = {}
        orig = tr.model.forward

        def spy(x, state, _orig=orig, captured=captured):
            captured["h0"] = state[0].clone()
            return _orig(x, state)

        tr.model.forward = spy
        tr.train_rows(100)
        tr.model.forward = orig
        assert bool((captured["h0"] == 0).all()) is zero
        if not zero:
            assert torch.equal(captured["h0"], h_end)


def test_gradient_crosses_rows_within_a_window():
    # with K > 1 the loss at the last row depends on the first row's input
    tr = trainer(k=10)
    x = torch.zeros(1, 10, 5, requires_grad=True)
    out, _ = tr.model(x, tr.model.init_hidden(1))
    out[0, -1, 0].backward()
    assert x.grad[0, 0].abs().sum() > 0


def test_fresh_noise_differs_per_epoch_and_train_noise_does_not():
    fresh = trainer(noise="fresh")
    s0 = fresh.S.clone()
    while fresh.row < fresh.rows_per_epoch:
        fresh.train_rows(1000)
    fresh.end_epoch()
    assert not torch.equal(s0, fresh.S)
    assert not np.allclose(s0.numpy(), train_set(fresh.config).S)
    fixed = trainer(noise="train")
    assert np.array_equal(fixed.S.numpy(), train_set(fixed.config).S)


def test_state_check_passes():
    tr = trainer(k=50)
    check = tr.state_check(rows=200)
    assert check.passed, check.detail


@pytest.mark.parametrize(
    "options",
    [{"k": 0}, {"reset": "never"}, {"noise": "test"}, {"bogus": 1}, {"noise_seed": -1}],
)
def test_bad_options_are_refused(options):
    with pytest.raises(FreqtuiError):
        RunConfig(method="tbptt", options=options).validated()


def _roundtrip(d):
    buf = io.BytesIO()
    torch.save(d, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_resume_from_state_dict_is_exact():
    torch.manual_seed(0)
    a = trainer(k=40)
    for _ in range(3):
        a.train_rows(40)
    saved_model = _roundtrip(a.model.state_dict())
    saved = _roundtrip(a.state_dict())
    b = trainer(k=40)
    b.model.load_state_dict(saved_model)
    b.load_state_dict(saved)
    for tr in (a, b):  # finish the epoch, start another with fresh noise
        while tr.row < tr.rows_per_epoch:
            tr.train_rows(1000)
        tr.end_epoch()
        tr.train_rows(120)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert torch.equal(a.carried_state[0], b.carried_state[0])
    assert torch.equal(a.S, b.S)


def test_direct_construction_matches_registry():
    assert isinstance(trainer(), TbpttTrainer)


def test_fused_and_torch_tbptt_windows_agree():
    """A few windows with the state carried on both backends from the same weights: the
    wiring (carried h0/c0, the mean over the window, clip) agrees; the kernel's arithmetic
    is pinned to 1e-9 in float64 by test_window_kernel.py. Float32 paths measured under
    1e-3·lr apart; a wiring error moves weights by O(lr) a window."""
    pytest.importorskip("numba")
    runs = {}
    for backend in ("torch", "fused"):
        config = RunConfig(method="tbptt", backend=backend, duration=0.1, options={"k": 16})
        tr = make_trainer(build_model(config), config, train_set(config))
        assert tr.backend == backend
        tr.train_rows(64)
        runs[backend] = tr
    lr = runs["torch"].config.lr
    a_state, b_state = runs["torch"].model.state_dict(), runs["fused"].model.state_dict()
    for k in a_state:
        assert torch.allclose(a_state[k], b_state[k], rtol=0, atol=0.02 * lr), k
    for a, b in zip(runs["torch"].carried_state, runs["fused"].carried_state, strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4)
