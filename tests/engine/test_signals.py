"""The data must be byte-for-byte what SPEC §1 describes, restated here independently."""

import math

import numpy as np
import pytest

from engine.config import RunConfig
from engine.signals import generate, test_set, train_set


def spec_generator(seed: int, phase_scale: float = 1.0) -> np.ndarray:
    # SPEC §1, written out again from the text, not from engine/signals.py
    N, fs = 10_000, 1000.0
    freqs = [1.0, 3.0, 5.0, 7.0]
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.8, 1.2, size=(4, N))
    phi = rng.uniform(0.0, 2 * math.pi, size=(4, N)) * phase_scale
    t = np.arange(N) / fs
    total = np.zeros(N)
    for i, f in enumerate(freqs):
        total += A[i] * np.sin(2 * math.pi * f * t + phi[i])
    return (total / 4).astype(np.float32)


@pytest.mark.parametrize("seed", [1, 2])
def test_S_matches_the_spec_bit_for_bit(seed):
    ours = generate(seed).S
    theirs = spec_generator(seed)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def test_train_and_test_differ_only_in_noise():
    c = RunConfig()
    tr, te = train_set(c), test_set(c)
    np.testing.assert_array_equal(tr.targets, te.targets)
    assert not np.array_equal(tr.S, te.S)


def test_phase_scale_is_selectable_and_changes_S():
    assert not np.array_equal(generate(1, phase_scale=0.01).S, generate(1).S)
    np.testing.assert_array_equal(generate(1, phase_scale=0.01).S, spec_generator(1, 0.01))


def test_row_layout_four_blocks_in_time_order():
    s = train_set(RunConfig())
    X, y = s.rows()
    assert X.shape == (40_000, 5) and y.shape == (40_000,)
    for i in range(4):
        block = X[i * 10_000 : (i + 1) * 10_000]
        np.testing.assert_array_equal(block[:, 0], s.S)  # all four blocks share S
        onehot = np.zeros(4, dtype=np.float32)
        onehot[i] = 1
        assert (block[:, 1:] == onehot).all()
    f2 = 3.0
    assert y[10_001] == pytest.approx(math.sin(2 * math.pi * f2 * 0.001), abs=1e-6)
