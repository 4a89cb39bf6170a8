"""Frozen MSE (SPEC §3): weights fixed, each frequency block its own stream from a zero state.

Online loss is what a trainer sees while the weights move; this module never trains and
never reports online loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.config import RunConfig
from engine.history import FrozenMSE  # a plain record; defined torch-free there
from engine.model import FrequencyLSTM
from engine.signals import SignalSet, test_set, train_set


@dataclass(frozen=True)
class FrozenEval:
    """A frozen evaluation on train and test, with the outputs kept for the graphs."""

    train: FrozenMSE
    test: FrozenMSE
    test_outputs: np.ndarray  # (F, N) float32: model output on the test set
    train_outputs: np.ndarray  # (F, N)


@torch.no_grad()
def predict(model: FrequencyLSTM, signal: SignalSet) -> np.ndarray:
    """Model outputs (F, N): every block from a zero state at t = 0, in one nn.LSTM call."""
    x = torch.from_numpy(signal.inputs())
    was_training = model.training
    model.eval()
    try:
        y, _ = model(x, model.init_hidden(x.shape[0]))
    finally:
        model.train(was_training)
    return y[..., 0].numpy().copy()


def mse_of(outputs: np.ndarray, signal: SignalSet) -> FrozenMSE:
    err = (outputs.astype(np.float64) - signal.targets.astype(np.float64)) ** 2
    return FrozenMSE(float(err.mean()), tuple(float(e) for e in err.mean(axis=1)))


def frozen_mse(model: FrequencyLSTM, signal: SignalSet) -> FrozenMSE:
    return mse_of(predict(model, signal), signal)


def evaluate(model: FrequencyLSTM, config: RunConfig) -> FrozenEval:
    """Frozen MSE on the config's train set (seed 1) and test set (seed 2)."""
    tr, te = train_set(config), test_set(config)
    out_tr, out_te = predict(model, tr), predict(model, te)
    return FrozenEval(mse_of(out_tr, tr), mse_of(out_te, te), out_te, out_tr)


@dataclass(frozen=True)
class OscillatorDiagnostics:
    """How a frozen model's output tracks each target over time t, window by window.

    Each window is a whole number of periods of its frequency (at least one, at least
    `min_seconds`), so sin and cos are orthogonal over it and the projection
    y ≈ a·sin(2πft) + b·cos(2πft) is exact for a pure sine: the amplitude is √(a²+b²)
    (target: 1) and the phase atan2(b, a) (target: 0). All arrays are (F, K)."""

    t: np.ndarray  # window centres, seconds
    squared_error: np.ndarray  # mean (output - target)² over the window: frozen MSE in time
    phase_error_deg: np.ndarray  # output phase minus target phase, degrees in (-180, 180]
    amplitude_error: np.ndarray  # output amplitude minus the target's 1


def oscillator_diagnostics(
    outputs: np.ndarray, signal: SignalSet, *, points: int = 200, min_seconds: float = 0.2
) -> OscillatorDiagnostics:
    """Sliding-window projection of each block's output on the sin/cos of its frequency."""
    F, N = outputs.shape[0], min(outputs.shape[1], signal.n_samples)
    t = signal.t[:N]
    dt = float(t[1] - t[0]) if N > 1 else 1.0
    K = max(1, min(points, N))
    ts, sq, ph, am = (np.zeros((F, K)) for _ in range(4))
    for i, f in enumerate(signal.frequencies):
        y = outputs[i, :N].astype(np.float64)
        period = 1.0 / (f * dt)  # samples per period
        w = int(round(period * max(1, math.ceil(min_seconds * f))))
        w = max(2, min(w, N))
        ang = 2 * np.pi * f * t
        s, c = np.sin(ang), np.cos(ang)
        err = (y - signal.targets[i, :N].astype(np.float64)) ** 2

        a = 2 * _window_sums(y * s, w) / w
        b = 2 * _window_sums(y * c, w) / w
        e = _window_sums(err, w) / w
        starts = np.linspace(0, N - w, K).round().astype(int)
        ts[i] = t[starts] + (w - 1) * dt / 2
        sq[i] = e[starts]
        am[i] = np.hypot(a[starts], b[starts]) - 1.0
        ph[i] = np.degrees(np.arctan2(b[starts], a[starts]))
    return OscillatorDiagnostics(ts, sq, ph, am)


def _window_sums(v: np.ndarray, w: int) -> np.ndarray:
    """Sums of v over [k, k + w) for every k."""
    cs = np.concatenate(([0.0], np.cumsum(v)))
    return cs[w:] - cs[:-w]
