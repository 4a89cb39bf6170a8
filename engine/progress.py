"""The meters of a training loop, fed one chunk of rows at a time: the online loss's
moving averages (overall and per block), the epoch's means, rows/s over the newest
RATE_WINDOW_S of training, the next chunk's size, and the memory's slope over rows.
Torch-free; `TrainingRun`'s loop (engine/run.py) keeps one and reads it for each StepStats
and EpochDone."""

from __future__ import annotations

from collections import deque

import numpy as np

CHUNK_SECONDS = 0.05  # target time per chunk: the pause latency and the event rate
RATE_WINDOW_S = 30.0  # training time over which rows/s (and so the ETA) is measured
EMA_ROWS = 500  # smoothing window of the online-loss readout, in rows
LEAK_MB_PER_10K = 5.0  # an RSS slope above this, held over 10,000+ rows, means a leak
FIRST_CHUNK_ROWS = 8  # rows of the first chunk, before a chunk's time is known


class Meters:
    """What the loop measures of the chunks it trains (online loss: weights moving)."""

    def __init__(self, n_blocks: int) -> None:
        self.ema: list[float | None] = [None] * n_blocks  # online loss by block, smoothed
        self.ema_all: float | None = None  # online loss, smoothed
        self.chunk_rows = FIRST_CHUNK_ROWS
        self.mem: deque[tuple[int, float]] = deque(maxlen=64)  # (rows_total, RSS MB)
        self.rate_rows: deque[int] = deque(maxlen=4000)
        self.rate_t: deque[float] = deque(maxlen=4000)
        self.epoch_sum_by_block = np.zeros(n_blocks)
        self.epoch_rows_by_block = np.zeros(n_blocks, dtype=np.int64)
        self.new_epoch()

    def new_epoch(self) -> None:
        self.epoch_loss_sum, self.epoch_rows = 0.0, 0
        self.epoch_sum_by_block[:] = 0
        self.epoch_rows_by_block[:] = 0

    def add(self, chunk, seconds: float) -> None:
        """A chunk that trained rows (`chunk.rows` > 0) in `seconds`: the next chunk's
        size, the rate, the moving averages and the epoch's sums."""
        self.chunk_rows = int(np.clip(chunk.rows * CHUNK_SECONDS / max(seconds, 1e-6), 1, 50_000))
        self.rate_rows.append(chunk.rows)
        self.rate_t.append(seconds)
        ema = self.ema
        for b in range(len(ema)):
            n = int(chunk.rows_by_block[b])
            if n:
                mean = float(chunk.loss_sum_by_block[b] / n)
                w = 1 - (1 - 1 / EMA_ROWS) ** n
                ema[b] = mean if ema[b] is None else ema[b] + w * (mean - ema[b])
        w = 1 - (1 - 1 / EMA_ROWS) ** chunk.rows
        # finite: a trainer refuses a non-finite loss before it moves the weights
        self.ema_all = (
            chunk.online_loss
            if self.ema_all is None
            else self.ema_all + w * (chunk.online_loss - self.ema_all)
        )
        self.epoch_loss_sum += float(chunk.loss_sum_by_block.sum())
        self.epoch_rows += chunk.rows
        self.epoch_sum_by_block += chunk.loss_sum_by_block
        self.epoch_rows_by_block += chunk.rows_by_block

    def epoch_means(self) -> tuple[float, tuple[float | None, ...]] | None:
        """The epoch's online loss, overall and by block (None: a block it never trained),
        or None when it trained no row (resumed from a snapshot taken at its end)."""
        if not self.epoch_rows:
            return None
        by_block = tuple(
            float(s / n) if n else None
            for s, n in zip(self.epoch_sum_by_block, self.epoch_rows_by_block, strict=True)
        )
        return self.epoch_loss_sum / self.epoch_rows, by_block

    def rate(self) -> float:
        """Rows/s over the newest RATE_WINDOW_S of training: a few chunks would swing the
        ETA with every change of step size (a clock horizon that grows)."""
        rows = seconds = 0.0
        for n, dt in zip(reversed(self.rate_rows), reversed(self.rate_t), strict=True):
            rows, seconds = rows + n, seconds + dt
            if seconds >= RATE_WINDOW_S:
                break
        return rows / max(seconds, 1e-9)

    def add_memory(self, rows_total: int, rss_mb: float) -> None:
        self.mem.append((rows_total, rss_mb))

    def forget_memory(self) -> None:
        """After an evaluation or a save: their one-off allocations are not a leak."""
        self.mem.clear()

    def memory_slope(self) -> tuple[float, bool]:
        """RSS growth in MB per 10,000 rows, and whether it is a leak (over the limit,
        held over 10,000 rows or more)."""
        mem = self.mem
        slope = 0.0
        if len(mem) >= 16 and mem[-1][0] > mem[0][0]:
            xs = np.array([m[0] for m in mem], dtype=float)
            ys = np.array([m[1] for m in mem])
            slope = float(np.polyfit(xs, ys, 1)[0] * 10_000)
        span = mem[-1][0] - mem[0][0] if mem else 0
        return slope, span >= 10_000 and slope > LEAK_MB_PER_10K
