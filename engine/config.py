"""RunConfig: the task's and the model's defaults (SPEC §1-2); a method's own defaults
(lr, clip, epochs) and its options come from its declaration in engine/methods.py.

Every field is checked here, once, by `RunConfig.validated`: a flag, an `-O` option and a
config read back from a file all pass through it, so a value that would cost gigabytes,
hang or overflow later is refused before any work, on one line naming the field. The
sizes are bounded to what this tool trains: a sample-by-sample LSTM of at most MAX_HIDDEN
units and MAX_LAYERS layers, on at most MAX_ROWS_PER_SET rows per set (10x the task as
written). An `-O` option's bounds are its declaration's (engine/options.py `Option`,
declared in engine/methods.py).

This module imports no trainer and no torch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import FreqtuiError
from engine.limits import big_count, check_seed, is_int, is_number, show
from engine.methods import METHODS, Method, method_named

BACKENDS = ("torch", "fused")
MAX_HIDDEN = 512
MAX_LAYERS = 4
MAX_BLOCKS = 16  # frequencies, i.e. frequency blocks and one-hot inputs
MAX_ROWS_PER_SET = 400_000  # duration x fs x blocks; the task is 40,000
MAX_EPOCHS = 100_000
MAX_LR = 10.0
MAX_OPTIONS = 32
MAX_TEXT = 100  # characters of a method name, backend or string option
SEED_FIELDS = ("train_seed", "test_seed", "torch_seed")
INT_FIELDS = ("hidden_size", "num_layers", "epochs", *SEED_FIELDS)
FLOAT_FIELDS = ("fs", "duration", "amp_low", "amp_high", "phase_scale", "lr", "clip")
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
        _check_dict(d)  # plain values and short lists before any conversion
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

    def validated(self, names: Mapping[str, str] | None = None) -> RunConfig:
        """Return self, or raise FreqtuiError naming the first bad field: as `names` spells
        it for the user (the CLI: its flags), else as `field_word` does."""
        word = field_namer(names)
        method = method_named(self.method)  # an unknown method first: nothing else fits

        def bad(msg: str) -> None:
            raise FreqtuiError(msg)

        # types and finiteness, before any value is compared or multiplied
        for name in INT_FIELDS:
            v = getattr(self, name)
            if not is_int(v):
                bad(f"{word(name)} must be an integer, got {show(v)}")
        for name in FLOAT_FIELDS:
            v = getattr(self, name)
            if not is_number(v) or not math.isfinite(v):
                bad(f"{word(name)} must be a finite number, got {show(v)}")
        for name in SEED_FIELDS:
            check_seed(word(name), getattr(self, name))
        if not 1 <= self.hidden_size <= MAX_HIDDEN:
            bad(f"{word('hidden_size')} must be in 1..{MAX_HIDDEN}, got {self.hidden_size}")
        if not 1 <= self.num_layers <= MAX_LAYERS:
            bad(f"{word('num_layers')} must be in 1..{MAX_LAYERS}, got {self.num_layers}")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            bad(f"{word('epochs')} must be in 1..{MAX_EPOCHS:,}, got {self.epochs}")
        if not 0 < self.lr <= MAX_LR:
            bad(f"{word('lr')} must be in (0, {MAX_LR:g}], got {self.lr}")
        if self.clip < 0:
            bad(f"{word('clip')} must be >= 0 (0 = off), got {self.clip}")
        for name in ("method", "backend"):
            v = getattr(self, name)
            if not isinstance(v, str) or len(v) > MAX_TEXT:
                bad(f"{word(name)} must be a short name, got {show(v)}")
        if self.backend not in BACKENDS:
            bad(f"{word('backend')} must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        # the signal: its frequencies, their sampling and the size of a set
        freqs = self.frequencies
        if not isinstance(freqs, tuple) or not 1 <= len(freqs) <= MAX_BLOCKS:
            bad(f"between 1 and {MAX_BLOCKS} frequencies are needed")
        for f in freqs:
            if not is_number(f) or not math.isfinite(f):
                bad(f"frequencies must be finite numbers, got {show(f)}")
            if f <= 0:
                bad(f"frequencies must be positive, got {f}")
        if self.fs <= 0:
            bad(f"{word('fs')} must be positive, got {self.fs}")
        nyquist = self.fs / 2
        if max(freqs) >= nyquist:
            bad(
                f"fs = {self.fs:g} Hz cannot represent {max(freqs):g} Hz "
                f"(Nyquist limit {nyquist:g} Hz): use fs > {2 * max(freqs):g}"
            )
        # duration x fs x blocks before n_samples is rounded: 1e300 x 1e300 is inf, not a crash
        rows = self.duration * self.fs * len(freqs)
        if not (math.isfinite(rows) and rows <= MAX_ROWS_PER_SET):
            bad(
                f"duration {self.duration:g} s x fs {self.fs:g} Hz x {len(freqs)} blocks is "
                f"{big_count(rows)} rows per set; this tool trains at most {MAX_ROWS_PER_SET:,}"
            )
        if self.duration <= 0 or self.n_samples < 2:
            bad(f"duration {self.duration:g} s at fs {self.fs:g} Hz gives fewer than 2 samples")
        if not 0 < self.amp_low <= self.amp_high:
            bad(
                f"amplitude range must satisfy 0 < low <= high, got {self.amp_low}, {self.amp_high}"
            )
        if self.phase_scale < 0:
            bad(f"{word('phase_scale')} must be >= 0, got {self.phase_scale}")
        if self.train_seed == self.test_seed:
            bad("train and test seeds must differ, or the test set is the training set")
        _check_options(self.options)  # plain values; each option's bounds are its method's
        method.validate(self)
        return self


def field_word(field_name: str) -> str:
    """A field as a message names it when the caller gives no word of its own:
    `phase_scale` is "phase-scale"."""
    return field_name.replace("_", "-")


def field_namer(names: Mapping[str, str] | None) -> Callable[[str], str]:
    """How a message names a field: by `names` (the CLI: its flags), else `field_word`."""
    return lambda field_name: (names or {}).get(field_name) or field_word(field_name)


def _check_options(options: Any) -> None:
    """`-O KEY=VALUE`: a few plain values, short words or finite numbers; each option's
    own bounds are its declaration's (engine/methods.py), checked by the method."""
    if not isinstance(options, dict) or len(options) > MAX_OPTIONS:
        raise FreqtuiError(f"options must be at most {MAX_OPTIONS} KEY=VALUE pairs")
    for key, v in options.items():
        if not isinstance(key, str) or len(key) > MAX_TEXT:
            raise FreqtuiError(f"option names are short strings, got {show(key)}")
        if isinstance(v, str):
            if len(v) > MAX_TEXT:
                raise FreqtuiError(f"option {key}: a value of {len(v)} characters is too long")
            continue
        if not is_number(v) and not isinstance(v, bool):
            raise FreqtuiError(f"option {key} must be a number or a word, got {show(v)}")
        if not math.isfinite(v):
            raise FreqtuiError(f"option {key} must be a finite number, got {v}")


def _check_dict(d: Any) -> None:
    """A config as read from a file, before any field is converted: a dict of plain
    values, its frequencies a short list and its options a small dict."""
    if not isinstance(d, dict) or len(d) > 64:
        raise FreqtuiError("the config is not a dict of settings")
    freqs = d.get("frequencies", ())
    if not isinstance(freqs, (list, tuple)) or not 1 <= len(freqs) <= MAX_BLOCKS:
        raise FreqtuiError(f"frequencies must be a list of 1 to {MAX_BLOCKS} numbers")
    if not all(is_number(f) for f in freqs):
        raise FreqtuiError("frequencies must be numbers")
    options = d.get("options", {})
    if not isinstance(options, dict):
        raise FreqtuiError("options must be a dict")
    for k, v in d.items():
        if k in ("frequencies", "options"):
            continue
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise FreqtuiError(f"{k} must be a plain value, got {type(v).__name__}")
