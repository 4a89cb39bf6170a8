"""The fused backend computes what the torch reference computes.

Three levels, because float32 rounding differences grow along the trajectory:

- float64, 1,000 rows (300 with clipping): the fused kernel and the hand-off's torch loop agree on every
  parameter, both Adam moments, the step and (h, c) to far better than 1e-5; this pins
  the arithmetic (forward, one-step gradients, clipping, Adam with bias correction).
- float32, every row of 1,000: started from the same state, one fused step and one torch
  step agree to 1e-5 relative on everything.
- float32, 1,000 rows free-running: the two trajectories differ only by rounding
  growth, which is as large between torch's own two CPU LSTM paths (oneDNN and native);
  the fused trajectory is checked to stay as close to the float64 truth as torch's.
- a full epoch (40,000 rows): frozen MSE of fused and torch are as close as two float32
  runs from weights one ulp apart (the bound is measured in the test; see there).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.config import RunConfig
from engine.evaluation import frozen_mse
from engine.model import FrequencyLSTM, build_model
from engine.signals import test_set, train_set
from engine.training.kernels import handoff as fk
from engine.training.kernels.common import AVAILABLE, UNAVAILABLE_REASON, KernelUnavailable

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=str(UNAVAILABLE_REASON))

CONFIG = RunConfig()


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    """The spec's train rows (seed 1), 40,000 of them in four frequency blocks."""
    return train_set(CONFIG).rows()


def fresh(dtype: torch.dtype = torch.float32) -> tuple[FrequencyLSTM, torch.optim.Adam]:
    model = build_model(CONFIG).to(dtype)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def clone(model: FrequencyLSTM, opt: torch.optim.Adam):
    twin = build_model(CONFIG).to(model.fc.weight.dtype)
    twin.load_state_dict(model.state_dict())
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    if opt.state:
        twin_opt.load_state_dict(opt.state_dict())
    return twin, twin_opt


def torch_rows(model, opt, X, Y, h, c, clip: float = 0.0):
    """The hand-off's loop exactly: one row, backward, (clip), step, detach."""
    x = torch.from_numpy(X).to(model.fc.weight.dtype)
    y = torch.from_numpy(Y).to(model.fc.weight.dtype)
    losses, outputs = [], []
    for r in range(len(x)):
        out, (h, c) = model(x[r].view(1, 1, -1), (h, c))
        outputs.append(out.item())
        loss = F.mse_loss(out.view(1), y[r : r + 1])
        opt.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        h, c = h.detach(), c.detach()
        losses.append(loss.item())
    return h, c, np.array(losses), np.array(outputs)


def tensors(model, opt, h, c) -> dict[str, torch.Tensor]:
    """Every number the two backends must agree on, by name."""
    out = {}
    for name, p in model.named_parameters():
        st = opt.state[p]
        out[name] = p.detach()
        out[name + ".exp_avg"] = st["exp_avg"]
        out[name + ".exp_avg_sq"] = st["exp_avg_sq"]
        out[name + ".step"] = st["step"]
    out["h"], out["c"] = h, c
    return out


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64 (0 when both are zero)."""
    a, b = a.detach().double(), b.detach().double()
    scale = float(b.norm())
    return float((a - b).norm()) / scale if scale else float((a - b).norm())


def errors(fa, fb) -> dict[str, float]:
    return {k: rel_err(fa[k], fb[k]) for k in fb}


# With clipping at 0.05 (active on most rows) the clipped dynamics amplify even float64
# summation-order differences about 30-fold per 100 rows (1e-13 at row 200, 4e-4 at row
# 1,000), so that case is pinned over its first 300 rows.
@pytest.mark.slow
@pytest.mark.parametrize(("clip", "n"), [(0.0, 1000), (0.05, 300)])
def test_float64_fused_equals_torch(rows, clip, n):
    X, Y = rows
    X, Y = X[:n].astype(np.float64), Y[:n].astype(np.float64)
    ref, ref_opt = fresh(torch.float64)
    fus, fus_opt = clone(ref, ref_opt)
    h, c = ref.init_hidden(1)
    hf, cf = fus.init_hidden(1)

    h, c, ref_losses, _ = torch_rows(ref, ref_opt, X, Y, h, c, clip)
    block = fk.FusedStepper(fus, fus_opt, max_norm=clip).train_block(X, Y, hf, cf)

    assert block.rows == n and not block.diverged
    err = errors(tensors(fus, fus_opt, hf, cf), tensors(ref, ref_opt, h, c))
    worst = max(err, key=err.get)
    # the brief asks 1e-5; in float64 the only difference is summation order, so the
    # same arithmetic must land far closer than that
    assert err[worst] < 1e-9, f"{worst}: {err[worst]:.2e}"
    np.testing.assert_allclose(block.losses, ref_losses, rtol=1e-7, atol=1e-12)


def test_clipping_is_active_in_the_clip_case(rows):
    # the clip test above only means something if clip_grad_norm_ really scales rows
    X, Y = rows
    model, opt = fresh()
    h, c = model.init_hidden(1)
    x = torch.from_numpy(X[:200])
    y = torch.from_numpy(Y[:200])
    clipped = 0
    for r in range(200):
        out, (h, c) = model(x[r].view(1, 1, -1), (h, c))
        opt.zero_grad()
        F.mse_loss(out.view(1), y[r : r + 1]).backward()
        clipped += float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)) > 0.05
        opt.step()
        h, c = h.detach(), c.detach()
    assert 20 < clipped < 200


@pytest.mark.slow
def test_float32_each_of_1000_steps_matches_torch_from_the_same_state(rows):
    # Relative error is measured against the largest size the quantity takes over the
    # run: the output, dy = 2 (y - target) and with it exp_avg pass through zero, where
    # any float32 difference is "relatively" huge (1e-4 on one row of 1,000) while the
    # arithmetic is the same.
    X, Y = rows
    ref, ref_opt = fresh()
    h, c = ref.init_hidden(1)
    fus, fus_opt = clone(ref, ref_opt)
    stepper = fk.FusedStepper(fus, fus_opt)
    diff: dict[str, float] = {}
    size: dict[str, float] = {}
    for r in range(1000):
        # the fused side starts every row from the reference's exact state
        with torch.no_grad():
            for p, q in zip(ref.parameters(), fus.parameters(), strict=True):
                q.copy_(p)
                for key in ref_opt.state[p]:
                    fus_opt.state[q][key].copy_(ref_opt.state[p][key])
        hf, cf = h.clone(), c.clone()

        h, c, _, ref_out = torch_rows(ref, ref_opt, X[r : r + 1], Y[r : r + 1], h, c)
        block = stepper.train_block(X[r : r + 1], Y[r : r + 1], hf, cf)

        got = tensors(fus, fus_opt, hf, cf)
        want = tensors(ref, ref_opt, h, c)
        got["output"] = torch.tensor(float(block.outputs[0]))
        want["output"] = torch.tensor(float(ref_out[0]))
        for key, b in want.items():
            d = float((got[key].double() - b.double()).norm())
            diff[key] = max(diff.get(key, 0.0), d)
            size[key] = max(size.get(key, 0.0), float(b.double().norm()))
    err = {k: diff[k] / size[k] for k in diff}
    worst = max(err, key=err.get)
    assert err[worst] < 1e-5, f"{worst}: {err[worst]:.2e}"


@pytest.mark.slow
def test_float32_trajectory_is_as_faithful_as_torchs_own(rows):
    # Rounding differences of one ulp grow along a trajectory whose weights move every
    # row; torch's own two CPU LSTM paths drift apart the same way. The float64 run is
    # the truth both float32 runs are measured against.
    X, Y = rows
    X, Y = X[:1000], Y[:1000]
    truth, truth_opt = fresh(torch.float64)
    ref, ref_opt = fresh()
    fus, fus_opt = clone(ref, ref_opt)
    h64, c64, _, _ = torch_rows(truth, truth_opt, X, Y, *truth.init_hidden(1))
    h, c, _, _ = torch_rows(ref, ref_opt, X, Y, *ref.init_hidden(1))
    hf, cf = fus.init_hidden(1)
    fk.FusedStepper(fus, fus_opt).train_block(X, Y, hf, cf)

    exact = tensors(truth, truth_opt, h64, c64)
    vs_exact = {
        "fused": errors(tensors(fus, fus_opt, hf, cf), exact),
        "torch": errors(tensors(ref, ref_opt, h, c), exact),
    }
    weights_and_state = ["h", "c", *(n for n, _ in ref.named_parameters())]
    groups = {"weights and (h, c)": weights_and_state, "Adam moments": list(exact)}
    for group, keys in groups.items():
        fused = max(vs_exact["fused"][k] for k in keys)
        torch32 = max(vs_exact["torch"][k] for k in keys)
        assert fused < 3 * torch32, (
            f"{group}: fused float32 is {fused:.2e} from float64, torch float32 {torch32:.2e}"
        )


ENSEMBLE = 12  # float32 runs from weights one ulp apart: the spread rounding alone makes
SPREAD_FACTOR = 2  # two correct float32 runs may end this many ensemble ranges apart


def nudged(model: FrequencyLSTM, seed: int) -> FrequencyLSTM:
    """A copy of `model` with every weight moved by one ulp, up or down at random: the
    size of one float32 rounding, as a different summation order would make it."""
    twin = build_model(CONFIG)
    twin.load_state_dict(model.state_dict())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in twin.parameters():
            up = torch.randint(0, 2, p.shape, generator=g, dtype=torch.bool)
            p.copy_(torch.nextafter(p, torch.where(up, math.inf, -math.inf)))
    return twin


def fused_epoch(model: FrequencyLSTM, X: np.ndarray, Y: np.ndarray) -> FrequencyLSTM:
    """`model` after one epoch of the fused kernel, in its own dtype (Adam as the hand-off's)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    h, c = model.init_hidden(1)
    dtype = np.float64 if model.fc.weight.dtype == torch.float64 else np.float32
    block = fk.FusedStepper(model, opt).train_block(X.astype(dtype), Y.astype(dtype), h, c)
    assert block.rows == len(X) and not block.diverged
    return model


@pytest.mark.slow
def test_full_epoch_frozen_mse_matches_the_torch_reference(rows):
    # The real thing: a 40,000-row epoch of the hand-off's torch loop (about a minute on
    # one core) against the fused kernel, judged by frozen MSE on train and test.
    #
    # No fixed gap can hold here: the weights move every row, so a one-ulp difference
    # (a different summation order: another CPU's SIMD width, another thread count) grows
    # along the epoch. Measured on an AVX2 machine, fused and torch ended 3.2e-5 apart
    # (overall); on an AVX-512 Xeon 3.7e-4. So the bound is measured in the run itself:
    # ENSEMBLE float32 epochs from weights nudged by one ulp each scatter by what float32
    # rounding alone makes (measured: range 3.3e-4 overall, up to 5e-4 in a block, on
    # both sets, and centred on the float64 epoch). Two correct float32 implementations
    # are two draws from that scatter; fused must be within SPREAD_FACTOR ranges of torch
    # and of the float64 epoch (float64 fused equals float64 torch to 1e-9, pinned above).
    X, Y = rows
    ref, ref_opt = fresh()
    fus, _ = clone(ref, ref_opt)
    start = build_model(CONFIG)  # the weights ref and fus start from
    truth = fused_epoch(build_model(CONFIG).double(), X, Y).float()  # same start, float64
    torch_rows(ref, ref_opt, X, Y, *ref.init_hidden(1))
    fused_epoch(fus, X, Y)
    ensemble = [fused_epoch(nudged(start, seed), X, Y) for seed in range(ENSEMBLE)]
    for signal in (train_set(CONFIG), test_set(CONFIG)):
        a, b, t = frozen_mse(fus, signal), frozen_mse(ref, signal), frozen_mse(truth, signal)
        runs = [frozen_mse(m, signal) for m in ensemble]
        overall = np.array([r.overall for r in runs])
        blocks = np.array([r.per_block for r in runs])
        bound = SPREAD_FACTOR * float(np.ptp(overall))
        block_bound = SPREAD_FACTOR * np.ptp(blocks, axis=0)
        seen = f"fused {a.overall:.6f}, torch {b.overall:.6f}, float64 {t.overall:.6f}"
        assert abs(a.overall - b.overall) <= bound, f"{seen}: bound {bound:.2e}"
        assert abs(a.overall - t.overall) <= bound, f"{seen}: bound {bound:.2e}"
        gap = np.abs(np.array(a.per_block) - np.array(b.per_block))
        assert (gap <= block_bound).all(), f"per block {gap} vs bound {block_bound}"


def test_optimizer_state_is_torchs_own_memory(rows):
    # snapshots, evaluation and the console read the very tensors the kernel wrote
    X, Y = rows
    model, opt = fresh()
    h, c = model.init_hidden(1)
    before = model.lstm.weight_hh_l0.data_ptr()
    fk.FusedStepper(model, opt).train_block(X[:50], Y[:50], h, c)
    assert model.lstm.weight_hh_l0.data_ptr() == before
    sd = opt.state_dict()
    assert all(float(s["step"]) == 50 for s in sd["state"].values())
    # torch's own Adam continues from the fused state without complaint
    torch_rows(model, opt, X[50:60], Y[50:60], h, c)
    assert all(float(s["step"]) == 60 for s in opt.state_dict()["state"].values())


def test_a_non_finite_loss_stops_before_the_update(rows):
    X, Y = rows
    model, opt = fresh()
    h, c = model.init_hidden(1)
    Y = Y[:20].copy()
    Y[7] = np.inf
    stepper = fk.FusedStepper(model, opt)
    stepper.train_block(X[:7], Y[:7], h, c)
    weights = [p.detach().clone() for p in model.parameters()]
    h_before = h.clone()
    block = stepper.train_block(X[7:20], Y[7:20], h, c)
    assert block.rows == 0 and block.diverged and not np.isfinite(block.losses[0])
    assert torch.equal(h, h_before)
    for a, b in zip(weights, model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert float(opt.state[model.fc.bias]["step"]) == 7


def test_gate_means_are_those_of_the_last_row(rows):
    X, Y = rows
    model, opt = fresh()
    h, c = model.init_hidden(1)
    stepper = fk.FusedStepper(model, opt)
    stepper.train_block(X[:99], Y[:99], h, c)
    # recompute the last row's gates with the weights it saw: replay on a twin
    twin, twin_opt = fresh()
    ht, ct = twin.init_hidden(1)
    twin_stepper = fk.FusedStepper(twin, twin_opt)
    twin_stepper.train_block(X[:98], Y[:98], ht, ct)
    with torch.no_grad():
        lstm = twin.lstm
        x = torch.from_numpy(X[98])
        g = lstm.weight_ih_l0 @ x + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ ht[0, 0]
        g = g + lstm.bias_hh_l0
        i, f, gg, o = g.chunk(4)
        expected = (torch.sigmoid(i), torch.sigmoid(f), torch.tanh(gg), torch.sigmoid(o))
    np.testing.assert_allclose(
        stepper.gate_means, [float(t.mean()) for t in expected], rtol=1e-5, atol=1e-6
    )


def test_unsupported_setups_are_refused_with_a_reason():
    model, _ = fresh()
    with pytest.raises(KernelUnavailable, match="Adam"):
        fk.FusedStepper(model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(KernelUnavailable, match="weight_decay"):
        fk.FusedStepper(model, torch.optim.Adam(model.parameters(), weight_decay=0.1))


def test_warm_up_reports_compile_or_cache():
    info = fk.warm_up()
    assert info.seconds >= 0 and isinstance(info.from_cache, bool)
    assert fk.is_compiled()


# ---- the hand-off trainer's fused backend ------------------------------------------------
def handoff(backend: str, **kw):
    from engine.training import make_trainer

    config = RunConfig(method="handoff", backend=backend, **kw).validated()
    return make_trainer(build_model(config), config, train_set(config))


def test_handoff_trainer_backends_agree_across_chunk_sizes(rows):
    ref, fus = handoff("torch"), handoff("fused")
    assert ref.backend == "torch" and fus.backend == "fused"
    ref_chunk = ref.train_rows(200)
    fus_outputs = []
    for n in (1, 7, 92, 100):  # the run sizes its chunks by time: any split must agree
        fus_outputs.extend(fus.train_rows(n).live_output)
    assert fus.row == ref.row == 200
    # Both float32 trajectories drift from the float64 one by rounding growth; the fused
    # one must stay as close to it as torch's (within 3 times, as in the trajectory test
    # above). Measured here: outputs 6e-7 apart, weights 8e-7 relative.
    X, Y = rows
    truth, truth_opt = fresh(torch.float64)
    h64, c64, _, out64 = torch_rows(truth, truth_opt, X[:200], Y[:200], *truth.init_hidden(1))
    torch_gap = np.abs(ref_chunk.live_output - out64).max()
    assert np.abs(np.array(fus_outputs) - out64).max() <= 3 * torch_gap
    exact = tensors(truth, truth_opt, h64, c64)
    got = tensors(fus.model, fus.optimizer, *fus.carried_state)
    want = tensors(ref.model, ref.optimizer, *ref.carried_state)
    keys = ("h", "c", *(n for n, _ in ref.model.named_parameters()))
    torch_err = max(rel_err(want[k], exact[k]) for k in keys)  # so fused-torch <= 4x this
    for key in keys:
        assert rel_err(got[key], exact[key]) <= 3 * torch_err, key


def test_a_fused_snapshot_resumes_on_torch_and_back():
    fus = handoff("fused")
    fus.train_rows(300)
    state = fus.state_dict()
    ref = handoff("torch")
    ref.model.load_state_dict(fus.model.state_dict())
    ref.load_state_dict(state)
    ref.train_rows(10)
    back = handoff("fused")
    back.model.load_state_dict(ref.model.state_dict())
    back.load_state_dict(ref.state_dict())
    back.train_rows(10)
    assert back.row == 320
    assert all(float(s["step"]) == 320 for s in back.optimizer.state_dict()["state"].values())


def test_fused_trainer_passes_the_state_check_and_reports_compiling():
    from engine import events as ev

    tr = handoff("fused", duration=0.5)
    check = tr.state_check(rows=200)
    assert check.passed, check.detail
    seen = []
    tr.prepare(seen.append)
    done = [e for e in seen if isinstance(e, ev.Compiling) and e.done]
    assert len(done) == 1 and done[0].backend == "fused"


def test_fused_backend_falls_back_to_torch_with_a_reason_when_unsupported():
    from engine import events as ev

    tr = handoff("fused", num_layers=2)
    assert tr.backend == "torch" and "fused backend unavailable" in tr.backend_note
    seen = []
    tr.prepare(seen.append)
    assert any(isinstance(e, ev.RunWarning) for e in seen)
    assert tr.train_rows(3).rows == 3


@pytest.mark.parametrize("hidden", [3, 13])
def test_other_hidden_sizes_match_torch_in_float64(rows, hidden):
    # sizes that are not a multiple of the kernel's eight dot-product lanes
    X, Y = rows
    X, Y = X[:200].astype(np.float64), Y[:200].astype(np.float64)
    torch.manual_seed(5)
    ref = FrequencyLSTM(5, hidden).double()
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    fus = FrequencyLSTM(5, hidden).double()
    fus.load_state_dict(ref.state_dict())
    fus_opt = torch.optim.Adam(fus.parameters(), lr=1e-3)
    h, c, _, _ = torch_rows(ref, ref_opt, X, Y, *ref.init_hidden(1))
    hf, cf = fus.init_hidden(1)
    fk.FusedStepper(fus, fus_opt).train_block(X, Y, hf, cf)
    err = errors(tensors(fus, fus_opt, hf, cf), tensors(ref, ref_opt, h, c))
    worst = max(err, key=err.get)
    assert err[worst] < 1e-9, f"{worst}: {err[worst]:.2e}"
