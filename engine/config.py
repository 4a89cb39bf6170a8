"""RunConfig: the task's and the model's defaults (SPEC §1-2); a method's own defaults
(lr, clip, epochs) and its options come from its declaration in engine/methods.py.

This module imports no trainer and no torch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any

from engine import limits
from engine.errors import FreqtuiError
from engine.methods import METHODS, Method, method_named

BACKENDS = ("torch", "fused")
DEFAULT_METHOD = "clock"  # the method that learns the task as written (README, bench/quality.py)
# Training knobs whose good values depend on the method. A RunConfig built without them
# (or whose method is replaced) takes the method's own; `--method handoff` therefore
# trains exactly as the hand-off says (Adam 1e-3, no clipping, one epoch).
METHOD_FIELDS = ("lr", "clip", "epochs")


def registered_methods() -> list[Method]:
    """Every training method (engine/methods.py), the default method first."""
    return sorted(METHODS.values(), key=lambda m: (m.name != DEFAULT_METHOD, m.name))


def _default_backend() -> str:
    # the fused backend needs numba; without it the torch reference still works. Found,
    # not imported: a RunConfig (and `freqtui --help`) must not wait for numba to load
    return "fused" if importlib.util.find_spec("numba") is not None else "torch"


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run. SPEC §1 and §2 give the defaults."""

    # the signal task (SPEC §1)
    frequencies: tuple[float, ...] = (1.0, 3.0, 5.0, 7.0)
    fs: float = 1000.0
    duration: float = 10.0
    amp_low: float = 0.8
    amp_high: float = 1.2
    phase_scale: float = 1.0
    train_seed: int = 1
    test_seed: int = 2
    # the model (SPEC §2)
    hidden_size: int = 64
    num_layers: int = 1
    # training
    method: str = DEFAULT_METHOD
    # the backend asked for; a method without it trains on torch (`TrainingRun.backend`
    # reports the path that runs)
    backend: str = field(default_factory=_default_backend)
    # lr, epochs and clip: None = the method's own default (engine/methods.py), filled in at
    # construction, so after __init__ they always hold numbers
    lr: float | None = None
    epochs: int | None = None
    clip: float | None = None  # clipping by total norm; 0 = off
    torch_seed: int = 0
    # method-specific knobs, validated by the method itself
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # an unknown method keeps None here; validated() names it
        defaults = METHODS.get(self.method)
        for name in METHOD_FIELDS:
            if getattr(self, name) is None and defaults is not None:
                object.__setattr__(self, name, defaults.own_default(name))

    @property
    def n_samples(self) -> int:
        """N, the number of time samples per frequency block."""
        return int(round(self.duration * self.fs))

    @property
    def n_blocks(self) -> int:
        return len(self.frequencies)

    @property
    def rows_per_set(self) -> int:
        return self.n_blocks * self.n_samples

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with `changes`; a new method brings its own lr, clip and epochs unless
        they are among the changes."""
        if changes.get("method", self.method) != self.method:
            for name in METHOD_FIELDS:
                changes.setdefault(name, None)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["frequencies"] = list(self.frequencies)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        limits.check_config_dict(d)  # plain values and short lists before any conversion
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise FreqtuiError(f"unknown config fields: {', '.join(sorted(unknown))}")
        d = dict(d)
        if "frequencies" in d:
            d["frequencies"] = tuple(float(f) for f in d["frequencies"])
        if "options" in d:
            d["options"] = dict(d["options"])
        return cls(**d).validated()

    def validated(self) -> RunConfig:
        """Return self, or raise FreqtuiError naming the first bad field."""
        method = method_named(self.method)  # an unknown method first: nothing else fits

        limits.check_config(self)  # types, finiteness and sizes first (engine/limits.py)

        def bad(msg: str) -> None:
            raise FreqtuiError(msg)

        def finite(name: str, value: float) -> None:
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                bad(f"{name} must be a finite number, got {value!r}")

        for name in ("fs", "duration", "amp_low", "amp_high", "phase_scale", "lr", "clip"):
            finite(name.replace("_", "-"), getattr(self, name))
        if not self.frequencies:
            bad("at least one frequency is needed")
        for f in self.frequencies:
            finite("frequency", f)
            if f <= 0:
                bad(f"frequencies must be positive, got {f}")
        if self.fs <= 0:
            bad(f"fs must be positive, got {self.fs}")
        nyquist = self.fs / 2
        if max(self.frequencies) >= nyquist:
            bad(
                f"fs = {self.fs:g} Hz cannot represent {max(self.frequencies):g} Hz "
                f"(Nyquist limit {nyquist:g} Hz): use fs > {2 * max(self.frequencies):g}"
            )
        if self.duration <= 0 or self.n_samples < 2:
            bad(f"duration {self.duration:g} s at fs {self.fs:g} Hz gives fewer than 2 samples")
        if self.n_samples > 10_000_000:
            bad(f"duration {self.duration:g} s is too long ({self.n_samples} samples)")
        if not 0 < self.amp_low <= self.amp_high:
            bad(
                f"amplitude range must satisfy 0 < low <= high, got {self.amp_low}, {self.amp_high}"
            )
        if self.phase_scale < 0:
            bad(f"phase-scale must be >= 0, got {self.phase_scale}")
        if self.train_seed == self.test_seed:
            bad("train and test seeds must differ, or the test set is the training set")
        if self.hidden_size < 1:
            bad(f"hidden size must be >= 1, got {self.hidden_size}")
        if self.num_layers < 1:
            bad(f"layers must be >= 1, got {self.num_layers}")
        if self.lr <= 0:
            bad(f"lr must be positive, got {self.lr}")
        if self.epochs < 1:
            bad(f"epochs must be >= 1, got {self.epochs}")
        if self.clip < 0:
            bad(f"clip must be >= 0 (0 = off), got {self.clip}")
        if self.backend not in BACKENDS:
            bad(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        method.validate(self)
        return self
