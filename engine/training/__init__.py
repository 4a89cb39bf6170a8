"""Training methods, one module each, all sharing the contract in `base.py`."""

from __future__ import annotations

import importlib

from engine.errors import FreqtuiError

# every method module; each defines one Trainer subclass with a unique `method` name
_MODULES = ("handoff", "tbptt", "clock")  # add new method modules here
_METHODS: dict = {}


def _load() -> dict:
    if not _METHODS:
        from engine.training.base import Trainer

        for name in _MODULES:
            module = importlib.import_module(f"engine.training.{name}")
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, Trainer)
                    and obj is not Trainer
                    and getattr(obj, "method", None)
                    and obj.__module__ == module.__name__
                ):
                    _METHODS[obj.method] = obj
    return _METHODS


def method_names() -> list[str]:
    return sorted(_load())


def get_method(name: str):
    methods = _load()
    if name not in methods:
        raise FreqtuiError(f"unknown method {name!r}: choose one of {', '.join(sorted(methods))}")
    return methods[name]


def make_trainer(model, config, train):
    return get_method(config.method)(model, config, train)
