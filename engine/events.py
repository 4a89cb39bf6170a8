"""Typed progress events: the only thing a training run tells the outside world.

Every event is a small frozen dataclass. `replaceable` events (the live progress) may be
collapsed to the newest of their kind by whoever drains them (`collapse`); all others
must each be shown. `RunState` is the run's state as the controller reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from engine.history import EvalRecord, FrozenMSE

if TYPE_CHECKING:  # numpy for a type only: the CLI's quick commands load no numpy
    import numpy as np


class RunState(str, Enum):
    """What a TrainingRun's worker is doing; compares equal to its lower-case name."""

    READY = "ready"
    COMPILING = "compiling"
    CHECKING = "checking"
    RUNNING = "running"
    PAUSED = "paused"
    EVALUATING = "evaluating"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Event:
    replaceable: ClassVar[bool] = False


@dataclass(frozen=True)
class StateCheckDone(Event):
    """The hand-off's state check, run before the first step."""

    passed: bool
    rows: int
    rss_growth_mb: float
    detail: str


@dataclass(frozen=True)
class Compiling(Event):
    """A backend is compiling its kernels (first call) or has finished."""

    backend: str
    done: bool
    seconds: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class StepStats(Event):
    """Live progress after a chunk of rows. `online_*` is measured while the weights move."""

    replaceable: ClassVar[bool] = True
    epoch: int  # 1-based epoch being trained
    epochs: int
    row: int  # rows done in this epoch
    rows_per_epoch: int
    block: int  # frequency block (0-based) of the last row trained
    rows_total: int  # rows trained since the run began (all epochs, all sessions)
    rows_per_s: float
    elapsed_s: float  # training time, pauses excluded
    eta_s: float
    online_loss: float  # smoothed online loss (EMA)
    online_loss_by_block: tuple[float | None, ...]  # smoothed, per block; None = not seen yet
    rss_mb: float
    rss_slope_mb_per_10k: float
    leak_warning: bool
    h_norm: float
    c_norm: float
    saturated: float  # share of hidden units with |h| > 0.95
    gate_i: float
    gate_f: float
    gate_o: float
    # a few recent rows for the live plot: time, target, online output (output before update)
    live_t: tuple[float, ...] = field(default=())
    live_target: tuple[float, ...] = field(default=())
    live_output: tuple[float, ...] = field(default=())
    # the method's schedule now, (label, value) pairs (Trainer.schedule); () for none
    schedule: tuple[tuple[str, str], ...] = field(default=())
    blocks_together: bool = False  # every step trains all blocks (no one block is current)


@dataclass(frozen=True)
class ScheduleChanged(Event):
    """The method's schedule moved (a horizon grew, an amplitude rose): the new pairs."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EvalStarted(Event):
    epoch: int
    row: int


@dataclass(frozen=True)
class EvalDone(Event):
    """A frozen evaluation (weights fixed) on train and test."""

    epoch: int
    row: int
    rows_total: int
    train: FrozenMSE
    test: FrozenMSE
    seconds: float
    # (F, N) model output on the test set, for the plots
    test_outputs: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def record(self) -> EvalRecord:
        """The evaluation as the run's History keeps it."""
        return EvalRecord(self.epoch, self.row, self.rows_total, self.train, self.test)


@dataclass(frozen=True)
class EpochDone(Event):
    epoch: int
    online_loss: float  # mean online loss over the epoch's rows
    # mean online loss of each frequency block over the epoch (None: no rows of it)
    online_loss_by_block: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class Paused(Event):
    row: int


@dataclass(frozen=True)
class Resumed(Event):
    row: int


@dataclass(frozen=True)
class SnapshotSaved(Event):
    path: str
    reason: str  # "key", "autosave", "quit", "end"


@dataclass(frozen=True)
class RunWarning(Event):
    """Something the user should know that does not stop the run."""

    message: str


@dataclass(frozen=True)
class Finished(Event):
    rows_total: int  # rows trained since the run began (a step may run past an epoch's end)
    stopped: bool  # True when stopped by the user before the last epoch ended
    epoch: int = 0  # 1-based epoch being trained when it ended (epochs + 1 once finished)
    epochs: int = 0
    row: int = 0  # rows done in that epoch
    rows_per_epoch: int = 0


@dataclass(frozen=True)
class Failed(Event):
    message: str


@dataclass(frozen=True)
class SaveFailed(Event):
    """A snapshot the run made on its own could not be written; training goes on. Emitted
    once per outage (the first failure after a success), not after every chunk."""

    message: str


def collapse(events: list[Event]) -> list[Event]:
    """`events` in order, each replaceable kind kept only at its newest (in that one's
    place): what a drain that shows progress at a fixed rate needs."""
    newest = {type(e): i for i, e in enumerate(events) if e.replaceable}
    return [e for i, e in enumerate(events) if not e.replaceable or newest[type(e)] == i]
