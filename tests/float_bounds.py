"""Float tolerances measured against float64, for tests that compare float32 results
computed in different summation orders (thread counts, batch sizes, SIMD widths)."""

from __future__ import annotations

import copy

import numpy as np
import torch

FAITHFUL = 8  # a float32 path may be this many times farther from float64 than another


def predict_float64(model, signal) -> np.ndarray:
    """The model's outputs (F, N) computed in float64, every block from a zero state."""
    twin = copy.deepcopy(model).double()
    x = torch.from_numpy(signal.inputs()).double()
    with torch.no_grad():
        y, _ = twin(x, twin.init_hidden(x.shape[0]))
    return y[..., 0].numpy()


def frozen_mse_gap_bound(model, signal) -> tuple[float, np.ndarray]:
    """How far two float32 frozen evaluations of `model` on `signal` may be apart, overall
    and per block: each output of a float32 path lies within FAITHFUL times this path's
    measured distance D from float64, so two paths' outputs differ by d <= 2 FAITHFUL D,
    and their squared errors by at most d (2 |e| + d), e = float64 output - target."""
    from engine.evaluation import predict

    truth = predict_float64(model, signal)
    d = 2 * FAITHFUL * float(np.abs(predict(model, signal) - truth).max())
    per_row = d * (2 * np.abs(truth - signal.targets) + d)
    return float(per_row.mean()) + 1e-12, per_row.mean(axis=1) + 1e-12
