"""RunConfig: the one place where every default of the task and of training lives."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from engine.errors import FreqtuiError

BACKENDS = ("torch", "fused")
DEFAULT_METHOD = "clock"  # the method that learns the task as written (README, bench/quality.py)

# Training knobs whose good values depend on the method. A RunConfig built without them
# (or whose method is replaced) takes the method's own; `--method handoff` therefore
# trains exactly as the hand-off says (Adam 1e-3, no clipping, one epoch).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "handoff": {"lr": 1e-3, "clip": 0.0, "epochs": 1},
    "tbptt": {"lr": 1e-3, "clip": 1.0, "epochs": 1},
    "clock": {"lr": 3e-3, "clip": 1.0, "epochs": 20},
}
METHOD_FIELDS = ("lr", "clip", "epochs")


def _default_backend() -> str:
    try:  # the fused backend needs numba; without it the torch reference still works
        import numba  # noqa: F401
    except ImportError:
        return "torch"
    return "fused"


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
    backend: str = field(default_factory=_default_backend)
    # None = the method's own default (METHOD_DEFAULTS), filled in at construction
    lr: float = None  # type: ignore[assignment]
    epochs: int = None  # type: ignore[assignment]
    clip: float = None  # type: ignore[assignment]  # clipping by total norm; 0 = off
    torch_seed: int = 0
    # method-specific knobs, validated by the method itself
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defaults = METHOD_DEFAULTS.get(self.method, METHOD_DEFAULTS["handoff"])
        for name in METHOD_FIELDS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])

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
        from engine.training import get_method  # late: methods import config

        method = get_method(self.method)  # raises FreqtuiError for an unknown name
        method.validate_options(self)
        return self
