"""Frozen MSE (SPEC §3): weights fixed, each frequency block its own stream from a zero state.

Online loss is what a trainer sees while the weights move; this module never trains and
never reports online loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.config import RunConfig
from engine.model import FrequencyLSTM
from engine.signals import SignalSet, test_set, train_set


@dataclass(frozen=True)
class FrozenMSE:
    """Frozen MSE of one set: overall (all rows) and per frequency block."""

    overall: float
    per_block: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"overall": self.overall, "per_frequency": list(self.per_block)}

    @classmethod
    def from_dict(cls, d: dict) -> FrozenMSE:
        return cls(float(d["overall"]), tuple(float(v) for v in d["per_frequency"]))


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
