"""The loop's meters (engine/progress.py) on chunks made by hand: the online loss's
moving averages and epoch means, the rate over the newest training time, the memory's
slope and its leak verdict."""

from types import SimpleNamespace

import numpy as np
import pytest

from engine.progress import EMA_ROWS, RATE_WINDOW_S, Meters


def chunk(rows_by_block, loss_by_block):
    rows = np.array(rows_by_block, dtype=np.int64)
    sums = np.array(loss_by_block, dtype=float) * rows
    return SimpleNamespace(
        rows=int(rows.sum()),
        rows_by_block=rows,
        loss_sum_by_block=sums,
        online_loss=float(sums.sum() / rows.sum()),
    )


def test_epoch_means_and_moving_averages():
    m = Meters(3)
    assert m.epoch_means() is None  # resumed at an epoch's end: nothing to report
    m.add(chunk([100, 0, 100], [0.4, 0.0, 0.2]), 0.01)
    m.add(chunk([0, 0, 300], [0.0, 0.0, 0.1]), 0.01)
    overall, by_block = m.epoch_means()
    assert overall == pytest.approx((40 + 20 + 30) / 500)
    assert by_block[0] == pytest.approx(0.4) and by_block[1] is None
    assert by_block[2] == pytest.approx((20 + 30) / 400)
    # the block EMA moves towards the newer chunk by 1 - (1 - 1/EMA_ROWS)**rows
    w = 1 - (1 - 1 / EMA_ROWS) ** 300
    assert m.ema[2] == pytest.approx(0.2 + w * (0.1 - 0.2))
    assert m.ema[0] == pytest.approx(0.4) and m.ema[1] is None
    m.new_epoch()
    assert m.epoch_means() is None and m.ema[0] == pytest.approx(0.4)  # EMAs carry on


def test_the_rate_counts_only_the_newest_training_time():
    m = Meters(1)
    m.add(chunk([1000], [0.5]), RATE_WINDOW_S)  # slow, and older than the window
    m.add(chunk([3000], [0.5]), RATE_WINDOW_S)  # the newest window alone
    assert m.rate() == pytest.approx(3000 / RATE_WINDOW_S)
    assert m.chunk_rows >= 1


def test_memory_slope_and_leak():
    m = Meters(1)
    for i in range(16):  # 10 MB per 10,000 rows over 15,000 rows: a leak
        m.add_memory(i * 1000, 100.0 + i)
    slope, leak = m.memory_slope()
    assert slope == pytest.approx(10.0) and leak
    m.forget_memory()
    for i in range(16):  # flat: no leak
        m.add_memory(i * 1000, 100.0)
    assert m.memory_slope() == (pytest.approx(0.0), False)
