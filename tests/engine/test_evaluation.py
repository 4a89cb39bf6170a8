import numpy as np
import torch

from engine.config import RunConfig
from engine.evaluation import evaluate, frozen_mse, predict
from engine.model import build_model
from engine.signals import test_set


def test_vectorised_frozen_mse_equals_rows_one_at_a_time():
    config = RunConfig(duration=1.0, torch_seed=3)
    model = build_model(config)
    signal = test_set(config)
    fast = predict(model, signal)
    x = torch.from_numpy(signal.inputs())
    slow = np.zeros_like(fast)
    with torch.no_grad():
        for b in range(signal.n_blocks):
            state = model.init_hidden(1)  # each block: its own stream from zero at t = 0
            for n in range(signal.n_samples):
                y, state = model(x[b, n].view(1, 1, -1), state)
                slow[b, n] = y.item()
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    m = frozen_mse(model, signal)
    err = (slow.astype(np.float64) - signal.targets) ** 2
    assert abs(m.overall - err.mean()) < 1e-5
    np.testing.assert_allclose(m.per_block, err.mean(axis=1), atol=1e-5)


def test_predicting_zero_scores_half_the_variance_of_a_sine():
    config = RunConfig()
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    result = evaluate(model, config)
    assert abs(result.test.overall - 0.5) < 1e-3
    assert abs(result.train.overall - 0.5) < 1e-3


def test_evaluation_does_not_change_weights_or_mode():
    config = RunConfig(duration=0.5)
    model = build_model(config)
    before = [p.clone() for p in model.parameters()]
    model.train()
    evaluate(model, config)
    assert model.training
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)
