"""Training methods, one module each, all sharing the contract in `base.py`; fused
kernels in `kernels/`.

Each method's description, defaults and options are declared in engine/methods.py
(torch-free, filed with engine/config.py when the `engine` package loads); this package
holds the trainers that run them.
"""

from __future__ import annotations

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.model import FrequencyLSTM
from engine.signals import SignalSet
from engine.training.base import Trainer
from engine.training.clock import ClockTrainer
from engine.training.handoff import HandoffTrainer
from engine.training.tbptt import TbpttTrainer

# every method; each is one Trainer subclass with a unique `method` name
_METHODS: dict[str, type[Trainer]] = {
    cls.method: cls for cls in (HandoffTrainer, TbpttTrainer, ClockTrainer)
}


def method_names() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> type[Trainer]:
    if name not in _METHODS:
        raise FreqtuiError(f"unknown method {name!r}: choose one of {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def make_trainer(model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> Trainer:
    return get_method(config.method)(model, config, train)
