"""The fused window kernel computes what torch autograd + clip_grad_norm_ + Adam compute.

- float64: the kernel's gradients equal autograd's, and the weights, Adam's moments and
  step after 20 steps equal torch's, to 1e-9 (the only differences are summation order
  and exp's last bits), for zero and carried (h0, c0), clipping on and off, s_decay on
  and off, unequal coef, odd small sizes, and one or two threads.
- float32: one step from the same state agrees with torch within a bound measured in the
  same test: the distance of each float32 path (torch's and the kernel's) to the float64
  truth, so the kernel may be no further from the truth than a small multiple of
  torch's own float32 rounding.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from engine.model import FrequencyLSTM
from engine.training.kernels import window as wk
from engine.training.kernels.common import AVAILABLE, UNAVAILABLE_REASON, KernelUnavailable

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=str(UNAVAILABLE_REASON))

NAMES = {
    "lstm.weight_ih_l0": "weight_ih_l0",
    "lstm.weight_hh_l0": "weight_hh_l0",
    "lstm.bias_ih_l0": "bias_ih_l0",
    "lstm.bias_hh_l0": "bias_hh_l0",
    "fc.weight": "fc.weight",
    "fc.bias": "fc.bias",
}


def make(n_in: int, hidden: int, dtype: torch.dtype, seed: int = 0, lr: float = 1e-2):
    torch.manual_seed(seed)
    model = FrequencyLSTM(n_in, hidden).to(dtype)
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def twin(model, opt, dtype=None):
    dtype = dtype or model.fc.weight.dtype
    other = FrequencyLSTM(model.input_size, model.hidden_size).to(dtype)
    other.load_state_dict(model.state_dict())
    other_opt = torch.optim.Adam(other.parameters(), **{
        k: v for k, v in opt.defaults.items() if k in ("lr", "betas", "eps")
    })  # fmt: skip
    if opt.state:
        # a deep copy: load_state_dict keeps the very same tensors when no cast is needed
        other_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    return other, other_opt


def torch_step(model, opt, x, y, coef, h0, c0, clip, s_decay):
    """The step the kernel replaces, as the clock writes it (loss weighted by coef)."""
    out, (h, c) = model(x, (h0[None], c0[None]))
    err = (out[..., 0] - y) ** 2
    loss = (coef * err.mean(dim=1)).sum()
    if s_decay:
        loss = loss + s_decay * model.lstm.weight_ih_l0[:, 0].pow(2).sum()
    opt.zero_grad()
    loss.backward()
    grads = {NAMES[n]: p.grad.clone() for n, p in model.named_parameters()}
    norm = None
    if clip:
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
    opt.step()
    mse = err.detach().mean(dim=1)
    return out[..., 0].detach(), h[0].detach(), c[0].detach(), grads, norm, mse


def state(model, opt) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in model.named_parameters():
        out[name] = p.detach().clone()
        for key in ("exp_avg", "exp_avg_sq", "step"):
            out[f"{name}.{key}"] = opt.state[p][key].clone()
    return out


def window(B, T, n_in, hidden, dtype, gen, carried):
    x = torch.randn(B, T, n_in, dtype=dtype, generator=gen)
    y = torch.randn(B, T, dtype=dtype, generator=gen)
    coef = torch.rand(B, dtype=dtype, generator=gen) + 0.1
    if carried:
        h0 = 0.5 * torch.randn(B, hidden, dtype=dtype, generator=gen)
        c0 = torch.randn(B, hidden, dtype=dtype, generator=gen)
    else:
        h0 = torch.zeros(B, hidden, dtype=dtype)
        c0 = torch.zeros(B, hidden, dtype=dtype)
    return x, y, coef, h0, c0


CASES = [
    # B, T, n_in, H, carried, clip, s_decay, threads
    (8, 40, 5, 64, False, 0.0, 0.0, 2),
    (8, 40, 5, 64, True, 1.0, 1e-3, 2),
    (8, 25, 5, 64, True, 0.05, 0.0, 1),
    (8, 30, 5, 64, False, 0.0, 0.1, 1),
    (5, 17, 3, 7, True, 0.5, 1e-2, 2),
    (1, 9, 1, 3, True, 0.0, 0.0, 2),
    (3, 12, 2, 13, False, 0.2, 1e-2, 2),
    (10, 15, 5, 9, True, 0.3, 1e-3, 2),  # parts of 5: four streams per pass plus one
]


@pytest.mark.slow
@pytest.mark.parametrize(("B", "T", "n_in", "H", "carried", "clip", "s_decay", "threads"), CASES)
def test_float64_gradients_and_20_steps_equal_torch(B, T, n_in, H, carried, clip, s_decay, threads):
    dtype = torch.float64
    ref, ref_opt = make(n_in, H, dtype)
    ker, ker_opt = twin(ref, ref_opt)
    stepper = wk.WindowStepper(ker, ker_opt, threads=threads)
    gen = torch.Generator().manual_seed(1)
    clipped = 0
    for s in range(20):
        x, y, coef, h0, c0 = window(B, T, n_in, H, dtype, gen, carried)
        out, h, c, grads, norm, mse = torch_step(ref, ref_opt, x, y, coef, h0, c0, clip, s_decay)
        res = stepper.step(x, y, coef, h0, c0, clip=clip, s_decay=s_decay)
        assert res.updated
        got = stepper.grads
        for name, g in grads.items():
            err = float((torch.from_numpy(got[name]) - g).abs().max())
            assert err <= 1e-9 * max(1.0, float(g.abs().max())), f"step {s} {name}: {err:.2e}"
        np.testing.assert_allclose(res.outputs, out.numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.online_loss, mse.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.h.numpy(), h.numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.c.numpy(), c.numpy(), rtol=0, atol=1e-9)
        if norm is not None:
            assert res.grad_norm == pytest.approx(norm, rel=1e-9)
            clipped += norm > clip
    want, have = state(ref, ref_opt), state(ker, ker_opt)
    for key, w in want.items():
        err = float((have[key] - w).abs().max())
        assert err <= 1e-9 * max(1.0, float(w.abs().max())), f"{key}: {err:.2e}"
    if clip:
        assert clipped > 0, "the clip case never clipped: it tests nothing"


def masked_torch_step(model, opt, x, y, coef, lengths, clip, s_decay):
    """The clock's per-block windows in torch: every stream run to the longest window,
    each stream's error averaged over its own first lengths[b] rows, nothing beyond."""
    T = x.shape[1]
    mask = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
    out, _ = model(x, model.init_hidden(x.shape[0]))
    err = ((out[..., 0] - y) ** 2 * mask).sum(dim=1) / mask.sum(dim=1)
    loss = (coef * err).sum()
    if s_decay:
        loss = loss + s_decay * model.lstm.weight_ih_l0[:, 0].pow(2).sum()
    opt.zero_grad()
    loss.backward()
    grads = {NAMES[n]: p.grad.clone() for n, p in model.named_parameters()}
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return out[..., 0].detach() * mask, err.detach(), grads


@pytest.mark.parametrize(
    ("lengths", "threads"),
    [
        ((40, 13, 40, 7), 2),  # unequal, out of order: the kernel reorders and restores
        ((5, 40, 22, 9, 31, 40, 1, 17), 2),  # parts of unequal size, one stream of 1 row
        ((5, 40, 22, 9, 31, 40, 1, 17), 1),
        ((40,) * 4, 2),  # all equal: the plain path
    ],
)
def test_per_stream_windows_equal_torch_with_the_loss_masked(lengths, threads):
    """Each stream trains its own first lengths[b] rows (the clock's per-block windows):
    gradients, outputs (0 past the window), per-stream MSE, the state after each stream's
    own last row and 10 steps of weights equal torch's masked loss to 1e-9 in float64."""
    dtype = torch.float64
    B, T, n_in, H = len(lengths), max(lengths), 5, 12
    ref, ref_opt = make(n_in, H, dtype)
    ker, ker_opt = twin(ref, ref_opt)
    stepper = wk.WindowStepper(ker, ker_opt, threads=threads)
    gen = torch.Generator().manual_seed(7)
    for s in range(10):
        x, y, coef, _, _ = window(B, T, n_in, H, dtype, gen, False)
        with torch.no_grad():  # the state after stream b's own last row, before the step
            ends = [ref(x[b : b + 1, :n], ref.init_hidden(1))[1] for b, n in enumerate(lengths)]
        out, mse, grads = masked_torch_step(ref, ref_opt, x, y, coef, lengths, 1.0, 1e-3)
        res = stepper.step(x, y, coef, clip=1.0, s_decay=1e-3, lengths=lengths)
        for name, g in grads.items():
            err = float((torch.from_numpy(stepper.grads[name]) - g).abs().max())
            assert err <= 1e-9 * max(1.0, float(g.abs().max())), f"step {s} {name}: {err:.2e}"
        np.testing.assert_allclose(res.outputs, out.numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.online_loss, mse.numpy(), rtol=1e-9, atol=1e-12)
        for b, (h, c) in enumerate(ends):
            np.testing.assert_allclose(res.h[b].numpy(), h[0, 0].numpy(), rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.c[b].numpy(), c[0, 0].numpy(), rtol=0, atol=1e-9)
    for key, w in state(ref, ref_opt).items():
        assert float((state(ker, ker_opt)[key] - w).abs().max()) <= 1e-9, key


def test_per_stream_windows_are_bitwise_the_same_with_one_or_two_threads():
    a, a_opt = make(5, 16, torch.float32)
    b, b_opt = twin(a, a_opt)
    sa, sb = wk.WindowStepper(a, a_opt, threads=1), wk.WindowStepper(b, b_opt, threads=2)
    gen = torch.Generator().manual_seed(8)
    lengths = (30, 11, 4, 30, 19, 25)
    for _ in range(3):
        x, y, coef, _, _ = window(6, 30, 5, 16, torch.float32, gen, False)
        ra = sa.step(x, y, coef, clip=1.0, lengths=lengths)
        rb = sb.step(x, y, coef, clip=1.0, lengths=lengths)
        assert np.array_equal(ra.outputs, rb.outputs) and np.array_equal(
            ra.online_loss, rb.online_loss
        )
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_result_does_not_depend_on_the_thread_count():
    # the parts of the streams are fixed; threads only run them: bitwise the same
    dtype = torch.float32
    a, a_opt = make(5, 16, dtype)
    b, b_opt = twin(a, a_opt)
    gen = torch.Generator().manual_seed(3)
    sa = wk.WindowStepper(a, a_opt, threads=1)
    sb = wk.WindowStepper(b, b_opt, threads=2)
    for _ in range(3):
        x, y, coef, h0, c0 = window(6, 20, 5, 16, dtype, gen, True)
        ra = sa.step(x, y, coef, h0, c0, clip=1.0, s_decay=1e-3)
        rb = sb.step(x, y, coef, h0, c0, clip=1.0, s_decay=1e-3)
        assert np.array_equal(ra.outputs, rb.outputs)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_workspace_reuse_across_shapes():
    # a long window, then a short one, then a long one again: each equals torch
    dtype = torch.float64
    ref, ref_opt = make(5, 8, dtype)
    ker, ker_opt = twin(ref, ref_opt)
    stepper = wk.WindowStepper(ker, ker_opt)
    gen = torch.Generator().manual_seed(4)
    for B, T in ((4, 30), (4, 10), (2, 30), (4, 31)):
        x, y, coef, h0, c0 = window(B, T, 5, 8, dtype, gen, False)
        out, *_ = torch_step(ref, ref_opt, x, y, coef, h0, c0, 1.0, 0.0)
        res = stepper.step(x, y, coef, clip=1.0)
        np.testing.assert_allclose(res.outputs, out.numpy(), rtol=0, atol=1e-12)
    for key, w in state(ref, ref_opt).items():
        assert float((state(ker, ker_opt)[key] - w).abs().max()) < 1e-12, key


def test_float32_one_step_within_torchs_own_rounding():
    # Bound: both float32 paths are measured against the float64 truth of the same step;
    # the kernel's distance must stay within 4x torch's own float32 distance (summation
    # order and exp's last bit differ, both at the level of float32 rounding) plus a
    # floor of 4 ulp of each quantity's size for values torch happens to hit exactly.
    B, T, n_in, H = 8, 200, 5, 64
    ref32, opt32 = make(n_in, H, torch.float32, seed=5, lr=1e-3)
    gen = torch.Generator().manual_seed(6)
    # a few torch steps first so Adam's state is not trivial
    for _ in range(3):
        x, y, coef, h0, c0 = window(B, T, n_in, H, torch.float32, gen, True)
        torch_step(ref32, opt32, x, y, coef, h0, c0, 1.0, 1e-3)
    ker, ker_opt = twin(ref32, opt32)
    truth, truth_opt = twin(ref32, opt32, torch.float64)
    x, y, coef, h0, c0 = window(B, T, n_in, H, torch.float32, gen, True)
    out32, h32, c32, g32, _, _ = torch_step(ref32, opt32, x, y, coef, h0, c0, 1.0, 1e-3)
    d = torch.float64
    out64, h64, c64, g64, _, _ = torch_step(
        truth, truth_opt, x.to(d), y.to(d), coef.to(d), h0.to(d), c0.to(d), 1.0, 1e-3
    )
    stepper = wk.WindowStepper(ker, ker_opt)
    res = stepper.step(x, y, coef, h0, c0, clip=1.0, s_decay=1e-3)

    exact = {"out": out64, "h": h64, "c": c64, **{f"grad.{k}": v for k, v in g64.items()}}
    exact.update(state(truth, truth_opt))
    tor = {"out": out32, "h": h32, "c": c32, **{f"grad.{k}": v for k, v in g32.items()}}
    tor.update(state(ref32, opt32))
    kern = {"out": torch.from_numpy(res.outputs), "h": res.h, "c": res.c}
    kern.update({f"grad.{k}": torch.from_numpy(v) for k, v in stepper.grads.items()})
    kern.update(state(ker, ker_opt))
    ulp = float(np.finfo(np.float32).eps)
    worst = {}
    for key, e in exact.items():
        if key not in kern or key.endswith(".step"):
            continue
        e = e.double()
        size = float(e.abs().max())
        dist_torch = float((tor[key].double() - e).abs().max())
        dist_kern = float((kern[key].double() - e).abs().max())
        bound = 4 * dist_torch + 4 * ulp * size
        worst[key] = dist_kern / bound if bound else 0.0
        assert dist_kern <= bound, f"{key}: kernel {dist_kern:.2e}, torch {dist_torch:.2e}"
    assert len(worst) == 3 + 6 + 18  # out, h, c, six gradients, params and two moments


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: torch.optim.SGD(m.parameters(), lr=0.1), "Adam only"),
        (lambda m: torch.optim.Adam(m.parameters(), amsgrad=True), "amsgrad"),
        (lambda m: torch.optim.Adam(m.parameters(), weight_decay=0.1), "weight_decay"),
        (lambda m: torch.optim.Adam(m.parameters(), maximize=True), "maximize"),
        (lambda m: torch.optim.Adam(m.parameters(), foreach=True), "foreach"),
        (lambda m: torch.optim.Adam(list(m.parameters())[:3]), "six parameter tensors"),
    ],
)
def test_unsupported_optimizers_are_refused(change, message):
    model = FrequencyLSTM(5, 8)
    with pytest.raises(KernelUnavailable, match=message):
        wk.WindowStepper(model, change(model))


def test_unsupported_models_are_refused():
    model = FrequencyLSTM(5, 8, num_layers=2)
    with pytest.raises(KernelUnavailable, match="one-layer"):
        wk.WindowStepper(model, torch.optim.Adam(model.parameters()))
    model = FrequencyLSTM(5, 8).to(torch.float16)
    with pytest.raises(KernelUnavailable, match="float32 or float64"):
        wk.WindowStepper(model, torch.optim.Adam(model.parameters()))


def test_non_finite_loss_changes_nothing():
    model, opt = make(5, 8, torch.float32)
    stepper = wk.WindowStepper(model, opt)
    x = torch.randn(2, 10, 5)
    stepper.step(x, torch.zeros(2, 10), torch.ones(2))
    before = state(model, opt)
    y = torch.zeros(2, 10)
    y[1, 3] = float("nan")
    res = stepper.step(x, y, torch.ones(2))
    assert not res.updated and np.isnan(res.online_loss[1])
    after = state(model, opt)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_deep_copy_trains_its_own_copy():
    # the clock's state check deep-copies the trainer (model, optimizer and stepper)
    model, opt = make(5, 8, torch.float32)
    stepper = wk.WindowStepper(model, opt)
    gen = torch.Generator().manual_seed(7)
    x, y, coef, h0, c0 = window(4, 12, 5, 8, torch.float32, gen, True)
    stepper.step(x, y, coef, h0, c0)
    twin_model, twin_opt, twin_stepper = copy.deepcopy((model, opt, stepper))
    before = state(model, opt)
    twin_stepper.step(x, y, coef, h0, c0)
    after = state(model, opt)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original is untouched
    stepper.step(x, y, coef, h0, c0)  # ... and the same step there gives the same weights
    for p, q in zip(model.parameters(), twin_model.parameters(), strict=True):
        assert torch.equal(p, q)
