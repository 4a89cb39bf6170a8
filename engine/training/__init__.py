"""Training methods, one module each, all sharing the contract in `base.py`; fused
kernels in `kernels/`.

What a method is (name, defaults, options) is declared in engine/methods.py, the one
registry; here each declared method finds the Trainer that runs it.
"""

from __future__ import annotations

from engine.config import RunConfig
from engine.methods import method_named, method_names
from engine.model import FrequencyLSTM
from engine.signals import SignalSet
from engine.training.base import Trainer
from engine.training.clock import ClockTrainer
from engine.training.handoff import HandoffTrainer
from engine.training.tbptt import TbpttTrainer

__all__ = ["get_method", "make_trainer", "method_names"]

# the Trainer of each method in engine/methods.py (tests/test_layout.py: one each)
TRAINERS: tuple[type[Trainer], ...] = (ClockTrainer, HandoffTrainer, TbpttTrainer)


def get_method(name: str) -> type[Trainer]:
    """The Trainer of a declared method; FreqtuiError names the methods there are."""
    spec = method_named(name)
    return next(cls for cls in TRAINERS if cls.spec is spec)


def make_trainer(model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> Trainer:
    return get_method(config.method)(model, config, train)
