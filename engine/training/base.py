"""The contract every training method shares.

A trainer owns the optimizer, the carried (h, c) state and its position (epoch, row);
the model's weights belong to the model. `train_rows(n)` trains at most n rows (never
across an epoch boundary) and returns a `Chunk` of online-loss figures. Everything needed
to continue exactly lives in `state_dict()`: tensors and plain Python values only, so a
snapshot loads with `torch.load(weights_only=True)`.

To add a method: subclass `Trainer`, set `method`, and list the module in
`engine/training/__init__.py`.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError, TrainingDiverged
from engine.model import FrequencyLSTM, State
from engine.signals import SignalSet

LIVE_ROWS = 200  # how many recent rows a chunk keeps for the live plot


@dataclass
class Chunk:
    """What one call to `train_rows` did. Losses are online: measured while weights move."""

    rows: int
    loss_sum_by_block: np.ndarray  # (F,) sum of per-row online losses, by frequency block
    rows_by_block: np.ndarray  # (F,) rows trained, by block
    block: int  # block of the last row trained
    live_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    live_target: np.ndarray = field(default_factory=lambda: np.zeros(0))
    live_output: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def online_loss(self) -> float:
        return float(self.loss_sum_by_block.sum() / max(1, self.rows_by_block.sum()))


@dataclass(frozen=True)
class StateCheck:
    passed: bool
    rows: int
    rss_growth_mb: float
    detail: str


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class Trainer(ABC):
    method: ClassVar[str]
    description: ClassVar[str] = ""
    # rows per call in the state check; methods whose state holds a graph inside a chunk
    # (gradients across rows) check at their own update boundary
    check_chunk: ClassVar[int] = 1
    # a method's options (`-O KEY=VALUE`) and their defaults
    OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> None:
        self.model = model
        self.config = config
        self.train_signal = train
        self.epoch = 0  # epochs completed
        self.row = 0  # rows done in the current epoch

    # ---- what a method must provide -------------------------------------------------
    @abstractmethod
    def train_rows(self, max_rows: int) -> Chunk:
        """Train at most `max_rows` rows, stopping at the end of the epoch."""

    @property
    @abstractmethod
    def carried_state(self) -> State:
        """The (h, c) carried to the next row, (layers, batch, hidden)."""

    @property
    @abstractmethod
    def last_input(self) -> torch.Tensor:
        """The input rows (batch, features) that produced the carried state."""

    # ---- shared ---------------------------------------------------------------------
    @classmethod
    def validate_options(cls, config: RunConfig) -> None:
        """Raise FreqtuiError for option names this method does not have; methods with
        options extend this with their own value checks."""
        unknown = set(config.options) - set(cls.OPTIONS)
        if unknown:
            takes = f"it takes: {', '.join(cls.OPTIONS)}" if cls.OPTIONS else "it takes none"
            raise FreqtuiError(
                f"method {cls.method!r} has no option {', '.join(sorted(unknown))}; {takes}"
            )

    @property
    def rows_per_epoch(self) -> int:
        return self.config.rows_per_set

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    def state_dict(self) -> dict[str, Any]:
        """Position, optimizer and carried state; methods add their own (RNGs, curricula)."""
        h, c = self.carried_state
        return {
            "method": self.method,
            "epoch": self.epoch,
            "row": self.row,
            "optimizer": self.optimizer.state_dict(),
            "h": h.clone(),
            "c": c.clone(),
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if d.get("method") != self.method:
            raise FreqtuiError(f"trainer state is for {d.get('method')!r}, not {self.method!r}")
        self.epoch = int(d["epoch"])
        self.row = int(d["row"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.h, self.c = d["h"].clone(), d["c"].clone()

    def state_check(self, rows: int = 300) -> StateCheck:
        """The hand-off's check, on a copy so the real run is untouched: the carried state
        has no autograd history, every parameter gets a gradient, memory does not grow."""
        probe = copy.deepcopy(self)
        before = {n: p.detach().clone() for n, p in probe.model.named_parameters()}
        rss0 = rss_mb()
        done = 0
        warm = min(rows // 10, 50)  # first rows fill the allocator's pools: not a leak
        warmed = False
        try:
            while done < rows and not probe.finished:
                if not warmed and done >= warm:
                    rss0, warmed = rss_mb(), True
                chunk = probe.train_rows(min(self.check_chunk, rows - done))
                done += chunk.rows
                if probe.row >= probe.rows_per_epoch:
                    probe.end_epoch()
                h, c = probe.carried_state
                if h.grad_fn is not None or c.grad_fn is not None:
                    return StateCheck(
                        False,
                        done,
                        rss_mb() - rss0,
                        f"carried state still holds autograd history after row {done}: "
                        "it must be detached after every step",
                    )
        except RuntimeError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return StateCheck(
                False, done, rss_mb() - rss0, f"training failed at row {done}: {first}"
            )
        growth = rss_mb() - rss0
        still = [n for n, p in probe.model.named_parameters() if torch.equal(p.detach(), before[n])]
        if still:
            return StateCheck(
                False, done, growth, f"no gradient reached: {', '.join(still)} did not change"
            )
        if growth > 20.0:
            return StateCheck(False, done, growth, f"memory grew {growth:.1f} MB over {done} rows")
        return StateCheck(
            True,
            done,
            growth,
            f"{done} rows: state detached, all {len(before)} parameter tensors updated, "
            f"RSS {growth:+.1f} MB",
        )

    def _optimizer_step(self, loss: torch.Tensor, row: int) -> float:
        """The step every method shares: refuse a non-finite loss (before it reaches the
        weights), back-propagate, clip by total norm if configured, update. Returns the
        loss value. Expects `self.optimizer` over the model's parameters."""
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"online loss became {value} at epoch {self.epoch + 1}, row {row}"
            )
        self.optimizer.zero_grad()
        loss.backward()
        if self.config.clip > 0:
            torch.nn.utils.clip_grad_norm_(
                self.optimizer.param_groups[0]["params"], self.config.clip
            )
        self.optimizer.step()
        return value

    def end_epoch(self) -> None:
        """Called by the run when `row` reaches `rows_per_epoch`."""
        self.epoch += 1
        self.row = 0
        self.on_epoch_start()

    def on_epoch_start(self) -> None:
        """Hook: methods reset their carried state here if they want to."""
