"""The spec's signal generator (SPEC §1), the dataset row layout, and CSV export."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.config import RunConfig

CSV_HEADER = "t,S,C1,C2,C3,C4,target"


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


def generate(
    seed: int,
    *,
    frequencies: tuple[float, ...] = (1.0, 3.0, 5.0, 7.0),
    fs: float = 1000.0,
    n_samples: int = 10_000,
    amp_low: float = 0.8,
    amp_high: float = 1.2,
    phase_scale: float = 1.0,
) -> SignalSet:
    """Exactly SPEC §1: amplitudes drawn first, phases second, float64 until the cast."""
    rng = np.random.default_rng(seed)
    F = len(frequencies)
    A = rng.uniform(amp_low, amp_high, size=(F, n_samples))
    phi = rng.uniform(0.0, 2 * np.pi, size=(F, n_samples)) * phase_scale
    t = np.arange(n_samples) / fs
    f = np.asarray(frequencies, dtype=np.float64)[:, None]
    S = np.mean(A * np.sin(2 * np.pi * f * t + phi), axis=0)
    targets = np.sin(2 * np.pi * f * t)
    return SignalSet(
        t=t,
        S=S.astype(np.float32),
        targets=targets.astype(np.float32),
        frequencies=tuple(float(x) for x in frequencies),
    )


def for_config(config: RunConfig, seed: int, *, phase_scale: float | None = None) -> SignalSet:
    """The set a config describes, for any seed (the train seed, the test seed, or fresh draws)."""
    return _cached(
        seed,
        config.frequencies,
        config.fs,
        config.n_samples,
        config.amp_low,
        config.amp_high,
        config.phase_scale if phase_scale is None else phase_scale,
    )


@lru_cache(maxsize=8)
def _cached(seed, frequencies, fs, n_samples, amp_low, amp_high, phase_scale) -> SignalSet:
    s = generate(
        seed,
        frequencies=frequencies,
        fs=fs,
        n_samples=n_samples,
        amp_low=amp_low,
        amp_high=amp_high,
        phase_scale=phase_scale,
    )
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
    from engine.sessions import atomic_write_bytes  # late import: sessions imports the model

    buf = io.StringIO()
    np.savetxt(buf, table, fmt=fmt, delimiter=",", header=header, comments="")
    atomic_write_bytes(Path(path), buf.getvalue().encode())
