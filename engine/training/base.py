"""The contract every training method shares.

The base owns what every method shares: the optimizer (Adam over the model's
parameters at `config.lr`), the carried (h, c) state, the position (epoch, row), the one
optimizer step (which refuses a non-finite loss: the one divergence check), `Chunk`
building, `prepare()` and the state check; the model's weights belong to the model.
`train_rows(n)` trains at most n rows (never across an epoch boundary) and returns a
`Chunk` of online-loss figures. Everything needed to continue exactly lives in
`state_dict()`: tensors and plain Python values only, so a snapshot loads with
`torch.load(weights_only=True)`.

A method is declared once, in engine/methods.py (description, lr, clip, epochs,
backends, `-O` options); its Trainer names that declaration as `spec` and reads its
options' values with `spec.values(config.options)`. To add one: declare it there,
subclass `Trainer`, and list the subclass in `engine/training/__init__.py`.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from engine import events as ev
from engine.config import RunConfig
from engine.errors import FreqtuiError, TrainingDiverged
from engine.methods import Method
from engine.model import FrequencyLSTM, State
from engine.signals import SignalSet

LIVE_ROWS = 200  # how many recent rows a chunk keeps for the live plot


# ---- torch.optim without torch.compile's plumbing ------------------------------------
# torch wraps Adam's methods for torch.compile: the wrappers import torch._dynamo (1.3 s
# of CPU and 60 MB, as much as torch itself) on their first call in a process, to mark
# graph breaks or keep a function out of a compiled graph. freqtui never compiles, so
# that import is pure start-up cost: in every console, headless run and sweep worker.
# These two helpers skip it and call the very functions torch's wrappers call.
# tests/engine/test_start_cost.py checks that a run never imports torch._dynamo and that
# `adam_step` moves weights and moments bitwise as `optimizer.step()` does.


_COMPILE_FILE = getattr(getattr(torch, "_compile", None), "__file__", None)
_adam_module = importlib.import_module("torch.optim.adam")


def _uncompiled(fn: Any) -> None:
    """`torch._disable_dynamo`'s wrapper caches what it calls on the function it wraps
    (`__dynamo_disable`) and imports torch._dynamo to build it; the function itself is
    what it calls outside a compiled graph, so cache that. Where torch's layout differs
    nothing is set and torch imports it as before."""
    if callable(fn) and not hasattr(fn, "__dynamo_disable"):
        fn.__dynamo_disable = fn


def skip_dynamo_import() -> None:
    """Optimizer methods (`add_param_group`, `state_dict`, `load_state_dict`,
    `zero_grad`) and Adam's functional update are wrapped by `torch._disable_dynamo`."""
    for wrapper in vars(torch.optim.Optimizer).values():
        code = getattr(wrapper, "__code__", None)
        if code is not None and code.co_filename == _COMPILE_FILE:
            _uncompiled(getattr(wrapper, "__wrapped__", None))
    _uncompiled(getattr(getattr(_adam_module, "adam", None), "__wrapped__", None))


def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.step()`, torch's own update, minus two wrappers: the one that runs step
    hooks and a profiler label (freqtui registers no hooks), and the one that imports
    torch._dynamo at every call to mark graph breaks, then runs the step without grad
    (`differentiable` is False here). What runs is the function both wrap."""
    step = inspect.unwrap(type(optimizer).step)
    if step is type(optimizer).step or optimizer.defaults.get("differentiable"):
        optimizer.step()  # a layout this does not know: torch's own way
        return
    with torch.no_grad():
        step(optimizer)


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

    def live(self) -> dict[str, tuple[float, ...]]:
        """The rows kept for the live plot as plain floats, by the names the progress
        event (engine/events.py StepStats) gives them."""
        return {
            name: tuple(float(v) for v in getattr(self, name))
            for name in ("live_t", "live_target", "live_output")
        }

    @classmethod
    def of(
        cls,
        loss_sum_by_block: np.ndarray,
        rows_by_block: np.ndarray,
        block: int,
        live: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> Chunk:
        """A chunk from per-block sums and the rows trained (time, target, output), of
        which the last LIVE_ROWS are kept for the live plot."""
        t, target, output = live if live is not None else (np.zeros(0),) * 3
        return cls(
            rows=int(rows_by_block.sum()),
            loss_sum_by_block=loss_sum_by_block,
            rows_by_block=rows_by_block,
            block=block,
            live_t=t[-LIVE_ROWS:],
            live_target=target[-LIVE_ROWS:],
            live_output=output[-LIVE_ROWS:],
        )


@dataclass(frozen=True)
class StateCheck:
    passed: bool
    rows: int
    rss_growth_mb: float
    detail: str


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


Emit = Callable[[ev.Event], None]


class Trainer(ABC):
    spec: ClassVar[Method]  # the method's declaration (engine/methods.py)
    method: ClassVar[str]  # spec.name
    # rows per call in the state check; methods whose state holds a graph inside a chunk
    # (gradients across rows) check at their own update boundary
    check_chunk: ClassVar[int] = 1
    # streams the carried (h, c) holds: 1, or one per frequency block
    state_batch: ClassVar[str] = "one"
    # True when every step trains all frequency blocks at once (the status line then
    # says "all blocks", not the block of the last row)
    blocks_together: ClassVar[bool] = False
    # schedule labels whose value moves continuously (a learning rate being annealed):
    # shown live, but a change of theirs alone is not a ScheduleChanged event
    schedule_live: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> None:
        self.model = model
        self.config = config
        self.train_signal = train
        self.epoch = 0  # epochs completed
        self.row = 0  # rows done in the current epoch
        skip_dynamo_import()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.h, self.c = model.init_hidden(self._state_streams())
        self.backend = "torch"  # the path that runs; a method with more sets it
        self.backend_note = ""  # why the backend asked for does not run, if it does not
        self.kernel: Any = None  # the fused backend's kernels.common.Compiled, when it runs

    def _state_streams(self) -> int:
        return self.config.n_blocks if self.state_batch == "blocks" else 1

    # ---- what a method must provide -------------------------------------------------
    @abstractmethod
    def train_rows(self, max_rows: int) -> Chunk:
        """Train at most `max_rows` rows, stopping at the end of the epoch."""

    @property
    @abstractmethod
    def last_input(self) -> torch.Tensor:
        """The input rows (batch, features) that produced the carried state."""

    # ---- shared ---------------------------------------------------------------------
    @property
    def carried_state(self) -> State:
        """The (h, c) carried to the next row, (layers, batch, hidden)."""
        return self.h, self.c

    def prepare(self, emit: Emit) -> None:
        """Before the first row, on the worker: say why the backend asked for does not
        run, if it does not; compile the fused kernel (or load it from numba's cache) as
        a visible step, if it runs."""
        if self.backend_note:
            emit(ev.RunWarning(self.backend_note))
        if self.kernel is None:
            return
        if not self.kernel.is_compiled():
            emit(ev.Compiling("fused", done=False))
        info = self.kernel.warm_up()
        emit(ev.Compiling("fused", done=True, seconds=info.seconds, cached=info.from_cache))

    def schedule(self) -> tuple[tuple[str, str], ...]:
        """The method's schedule as it stands, as (label, value) pairs for the status line
        and the event log (a horizon, a learning rate...); none by default."""
        return ()

    def length_change_note(self, old_epochs: int, new_epochs: int) -> str:
        """What changes when a resume sets the run's length to `new_epochs`: empty for a
        method whose schedule does not depend on it."""
        return ""

    @property
    def rows_per_epoch(self) -> int:
        return self.config.rows_per_set

    @property
    def planned_epochs(self) -> int:
        """The run's length in epochs as it stands: --epochs, or for a method whose
        schedule decides its own length (the clock's polish) the length it now plans,
        never more than --epochs."""
        return self.config.epochs

    @property
    def finished(self) -> bool:
        return self.epoch >= self.planned_epochs

    def state_dict(self) -> dict[str, Any]:
        """Position, optimizer and carried state; methods add their own (RNGs, curricula)."""
        h, c = self.carried_state
        return {
            "method": self.method,
            "epoch": self.epoch,
            "row": self.row,
            "planned_epochs": self.planned_epochs,  # the run's length as it stands
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
        self.refuse_non_finite(value, row)
        self.optimizer.zero_grad()
        loss.backward()
        if self.config.clip > 0:
            torch.nn.utils.clip_grad_norm_(
                self.optimizer.param_groups[0]["params"], self.config.clip
            )
        adam_step(self.optimizer)
        return value

    def refuse_non_finite(self, value: float, row: int) -> None:
        """The divergence check every path shares: raise before a non-finite loss moves
        the weights."""
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"online loss became {value} at epoch {self.epoch + 1}, row {row}"
            )

    def fused_window(self) -> Any:  # a kernels.window.WindowStepper, or None
        """The full-BPTT window kernel over this trainer's model and Adam when the config
        asks for the fused backend and the kernel runs here; otherwise None, with the
        reason in `backend_note` (the run then trains on torch and says so)."""
        if self.config.backend != "fused":
            return None
        # late: numba and the kernel load only for a run that asks for them (listing
        # sessions or reading a file must stay light)
        from engine.training.kernels import window

        return self._fused_stepper(
            window, lambda: window.WindowStepper(
                self.model, self.optimizer, threads=min(window.MAX_PARTS, os.cpu_count() or 1)
            )
        )  # fmt: skip

    def _fused_stepper(self, kernel: Any, make: Callable[[], Any]) -> Any:
        """`make()`'s stepper of a fused kernel module, the backend then "fused"; or None
        when the kernel cannot run this setup, with the reason in `backend_note`."""
        from engine.training.kernels.common import KernelUnavailable

        try:
            stepper = make()
        except KernelUnavailable as exc:
            self.backend_note = f"fused backend unavailable ({exc}); training with torch"
            return None
        self.backend, self.kernel = "fused", kernel.KERNEL
        return stepper

    def weights_note(self) -> str:
        """Which weights the model holds (snapshots, `eval` and the console say so)."""
        return "final" if self.finished else "current (training)"

    def end_epoch(self) -> None:
        """Called by the run when `row` reaches `rows_per_epoch`."""
        self.epoch += 1
        self.row = 0
        self.on_epoch_start()

    def on_epoch_start(self) -> None:
        """Hook: methods reset their carried state here if they want to."""
