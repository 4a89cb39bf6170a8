"""The spec's signal generator (SPEC §1), fresh noise draws by the same recipe, the RNG
state helpers that keep those draws resumable, the dataset row layout, and CSV export."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import RunConfig
from engine.store.files import atomic_write_bytes

NOISE_SPAWN_KEY = 7919  # mixed into a noise seed: the stream can never be default_rng(seed)


@dataclass(frozen=True)
class SignalSet:
    """One set (train or test): the mixed signal S and one clean target per frequency."""

    t: np.ndarray  # (N,) float64 seconds
    S: np.ndarray  # (N,) float32, shared by every frequency block
    targets: np.ndarray  # (F, N) float32, targets[i] = sin(2*pi*f_i*t)
    frequencies: tuple[float, ...]

    @property
    def n_samples(self) -> int:
        return self.S.shape[0]

    @property
    def n_blocks(self) -> int:
        return self.targets.shape[0]

    def inputs(self) -> np.ndarray:
        """(F, N, 1 + F) float32: block i is [S(t), one-hot C for f_i] in time order."""
        F, N = self.n_blocks, self.n_samples
        x = np.zeros((F, N, 1 + F), dtype=np.float32)
        x[:, :, 0] = self.S
        for i in range(F):
            x[i, :, 1 + i] = 1.0
        return x

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The dataset as rows: X (F*N, 1+F) and y (F*N,), in four blocks in time order."""
        return self.inputs().reshape(-1, 1 + self.n_blocks), self.targets.reshape(-1).copy()


def _mixed(rng: np.random.Generator, config: RunConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The recipe of SPEC §1, in float64: amplitudes drawn first, phases second.
    Returns S (n,) and the times and frequencies' clean sines (F, n)."""
    F = config.n_blocks
    A = rng.uniform(config.amp_low, config.amp_high, size=(F, n))
    phi = rng.uniform(0.0, 2 * np.pi, size=(F, n)) * config.phase_scale
    t = np.arange(n) / config.fs
    f = np.asarray(config.frequencies, dtype=np.float64)[:, None]
    return np.mean(A * np.sin(2 * np.pi * f * t + phi), axis=0), np.sin(2 * np.pi * f * t)


def generate(seed: int, config: RunConfig | None = None, **changes: Any) -> SignalSet:
    """Exactly SPEC §1 for `config` (default: the spec's own), with any RunConfig fields
    in `changes`; float64 until the cast."""
    config = (config or RunConfig()).replace(**changes) if changes else (config or RunConfig())
    n = config.n_samples
    S, targets = _mixed(np.random.default_rng(seed), config, n)
    return SignalSet(
        t=np.arange(n) / config.fs,
        S=S.astype(np.float32),
        targets=targets.astype(np.float32),
        frequencies=tuple(float(x) for x in config.frequencies),
    )


def fresh_signal_inputs(
    rng: np.random.Generator, config: RunConfig, n_samples: int | None = None
) -> np.ndarray:
    """A fresh S (n,) float32 by the spec's recipe from `rng` (a noise generator)."""
    n = config.n_samples if n_samples is None else n_samples
    return _mixed(rng, config, n)[0].astype(np.float32)


def noise_generator(seed: int) -> np.random.Generator:
    """A trainer's own stream of fresh noise, never the train or test seed's."""
    return np.random.default_rng([int(seed), NOISE_SPAWN_KEY])


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as plain Python values (loads with weights_only=True)."""
    s = rng.bit_generator.state
    return {
        "bit_generator": s["bit_generator"],
        "state": int(s["state"]["state"]),
        "inc": int(s["state"]["inc"]),
        "has_uint32": int(s["has_uint32"]),
        "uinteger": int(s["uinteger"]),
    }


def set_rng_state(rng: np.random.Generator, d: dict[str, Any]) -> None:
    rng.bit_generator.state = {
        "bit_generator": d["bit_generator"],
        "state": {"state": int(d["state"]), "inc": int(d["inc"])},
        "has_uint32": int(d["has_uint32"]),
        "uinteger": int(d["uinteger"]),
    }


# the fields of a RunConfig that decide a set, besides its seed
_SET_FIELDS = ("frequencies", "fs", "duration", "amp_low", "amp_high", "phase_scale")


def for_config(config: RunConfig, seed: int) -> SignalSet:
    """The set a config describes, for any seed (the train seed, the test seed)."""
    return _cached(seed, *(getattr(config, f) for f in _SET_FIELDS))


@lru_cache(maxsize=8)
def _cached(seed, *values) -> SignalSet:
    s = generate(seed, RunConfig(**dict(zip(_SET_FIELDS, values, strict=True))))
    for a in (s.t, s.S, s.targets):
        a.setflags(write=False)  # shared through the cache: nobody may change it
    return s


def train_set(config: RunConfig) -> SignalSet:
    return for_config(config, config.train_seed)


def test_set(config: RunConfig) -> SignalSet:
    return for_config(config, config.test_seed)


test_set.__test__ = False  # a data set, not a pytest test (the name would be collected)


def write_csv(signal: SignalSet, path: Path) -> None:
    """Write the rows as `t,S,C1..CF,target`, one frequency block after another."""
    F = signal.n_blocks
    header = "t,S," + ",".join(f"C{i + 1}" for i in range(F)) + ",target"
    X, y = signal.rows()
    t = np.tile(signal.t, F)
    table = np.column_stack([t, X, y])
    fmt = ["%.6g", "%.9g"] + ["%d"] * F + ["%.9g"]
    buf = io.StringIO()
    np.savetxt(buf, table, fmt=fmt, delimiter=",", header=header, comments="")
    atomic_write_bytes(Path(path), buf.getvalue().encode())
