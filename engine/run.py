"""TrainingRun: one trainer in a worker thread, a small controller, and a stream of events.

The worker only emits events (engine/events.py); whoever drives it (the CLI, the console)
drains them on its own thread. Pause parks the worker on a threading.Event between chunks
of rows (a chunk is kept near 50 ms), so a paused run uses no CPU.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import events as ev
from engine import sessions
from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.evaluation import FrozenEval, evaluate
from engine.model import FrequencyLSTM, build_model
from engine.signals import train_set
from engine.training import make_trainer
from engine.training.base import Trainer, rss_mb

CHUNK_SECONDS = 0.05  # target time per chunk: the pause latency and the event rate
EMA_ROWS = 500  # smoothing window of the online-loss readout, in rows
LEAK_MB_PER_10K = 5.0  # an RSS slope above this, held over 10,000+ rows, means a leak


@dataclass
class History:
    """A run's metric history, kept in snapshots so a resumed run redraws its past.

    `online` is the smoothed online loss (weights moving), thinned as it grows; `evals`
    holds every frozen evaluation (weights fixed). The two are never mixed.
    """

    online: list[tuple[int, int, float]] = field(default_factory=list)  # (rows_total, block, loss)
    evals: list[dict[str, Any]] = field(default_factory=list)
    rows_total: int = 0
    train_seconds: float = 0.0
    max_points: int = 4000
    _stride: int = 1
    _skip: int = 0

    def add_online(self, rows_total: int, block: int, loss: float) -> None:
        self._skip += 1
        if self._skip < self._stride:
            return
        self._skip = 0
        self.online.append((rows_total, block, loss))
        if len(self.online) > self.max_points:  # thin: keep every other point, log twice as rarely
            self.online = self.online[::2]
            self._stride *= 2

    def add_eval(self, e: ev.EvalDone) -> None:
        self.evals.append(
            {
                "epoch": e.epoch,
                "row": e.row,
                "rows_total": e.rows_total,
                "train": e.train.to_dict(),
                "test": e.test.to_dict(),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "online": [list(p) for p in self.online],
            "evals": [dict(e) for e in self.evals],
            "rows_total": self.rows_total,
            "train_seconds": self.train_seconds,
            "stride": self._stride,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        h = cls(
            online=[(int(a), int(b), float(c)) for a, b, c in d.get("online", [])],
            evals=list(d.get("evals", [])),
            rows_total=int(d.get("rows_total", 0)),
            train_seconds=float(d.get("train_seconds", 0.0)),
        )
        h._stride = int(d.get("stride", 1))
        return h


def hidden_gauges(model: FrequencyLSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """‖h‖, ‖c‖, share of saturated units and mean i/f/o gates of the first stream."""
    with torch.no_grad():
        lstm = model.lstm
        h0, c0 = h[0, 0], c[0, 0]
        g = lstm.weight_ih_l0 @ x[0] + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ h0 + lstm.bias_hh_l0
        i, f, _, o = g.chunk(4)
        return (
            float(h0.norm()),
            float(c0.norm()),
            float((h0.abs() > 0.95).float().mean()),
            float(torch.sigmoid(i).mean()),
            float(torch.sigmoid(f).mean()),
            float(torch.sigmoid(o).mean()),
        )


class TrainingRun:
    """Owns a model, its trainer and the worker thread; the UI talks only to this.

    Snapshots go to `sessions_root / run_id / latest.pt` (engine/sessions.py): on
    `save_snapshot()`, every `autosave_every` rows, and when the run ends if `save_on_end`.
    `engine.sessions.run_from_snapshot` builds a run that continues one exactly.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        model: FrequencyLSTM | None = None,
        trainer_state: dict[str, Any] | None = None,
        history: History | None = None,
        state_check: bool = True,
        run_id: str | None = None,
        sessions_root: Path | None = None,
        autosave_every: int | None = None,
        save_on_end: bool = False,
        torch_rng: torch.Tensor | None = None,
    ) -> None:
        self.config = config.validated()
        self.model = model if model is not None else build_model(self.config)
        self.trainer: Trainer = make_trainer(self.model, self.config, train_set(self.config))
        if trainer_state is not None:
            self.trainer.load_state_dict(trainer_state)
        if torch_rng is not None:  # a resumed run draws what the saved one would have drawn
            torch.random.set_rng_state(torch_rng)
        self.history = history if history is not None else History()
        self.sessions_root: Path = sessions.sessions_dir(sessions_root)
        self.run_id: str = run_id or sessions.new_run_id(self.config.method, self.sessions_root)
        if autosave_every is not None and autosave_every < 1:
            autosave_every = None  # 0 = off
        self.autosave_every: int | None = autosave_every
        self.save_on_end = save_on_end
        self._last_save_rows = self.history.rows_total
        self._save_lock = threading.Lock()  # one snapshot write at a time
        self.status = "ready"  # running, paused, evaluating, finished, stopped, failed
        self.last_eval: FrozenEval | None = None
        self._state_check = state_check and trainer_state is None
        self._events: queue.SimpleQueue[ev.Event] = queue.SimpleQueue()
        self._running = threading.Event()  # cleared = paused
        self._running.set()
        self._stop = threading.Event()
        self._eval_request = threading.Event()
        self._wake = threading.Event()  # wakes a paused worker: resume, stop, evaluate
        self._lock = threading.RLock()  # held while the weights or the trainer change
        self._thread: threading.Thread | None = None

    # ---- controller ------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a TrainingRun starts once")
        self._thread = threading.Thread(target=self._work, name="freqtui-trainer", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self._wake.set()

    def toggle_pause(self) -> bool:
        """Pause if running, resume if paused; returns True when now paused."""
        if self._running.is_set():
            self.pause()
            return True
        self.resume()
        return False

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def request_eval(self) -> None:
        """A frozen evaluation between two chunks, or at once while paused."""
        self._eval_request.set()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._running.set()
        self._wake.set()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def drain(self) -> list[ev.Event]:
        """Every event emitted since the last drain, oldest first."""
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._events.get_nowait())
        return out

    @contextlib.contextmanager
    def locked(self):
        """Hold the worker between chunks: weights and trainer are consistent inside."""
        with self._lock:
            yield

    def capture(self) -> dict[str, Any]:
        """Everything needed to continue exactly, taken between two chunks."""
        with self._lock:
            return {
                "config": self.config.to_dict(),
                "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "trainer": _clone(self.trainer.state_dict()),
                "torch_rng": torch.random.get_rng_state(),
                "history": self.history.to_dict(),
                "rows_per_epoch": self.trainer.rows_per_epoch,
            }

    def save_snapshot(self, reason: str = "key") -> Path:
        """Write a snapshot now (from any thread) and emit SnapshotSaved; returns its path.
        The state is taken between two chunks; the write is atomic. FreqtuiError if the
        file cannot be written."""
        with self._save_lock:
            capture = self.capture()
            if not all(torch.isfinite(w).all() for w in capture["model"].values()):
                raise FreqtuiError(
                    "the weights hold NaN or infinite values: not saved (the last snapshot "
                    "stays as it was)"
                )
            payload = sessions.snapshot_payload(capture, self.run_id)
            path = sessions.write_snapshot(self.sessions_root / self.run_id, payload)
            self._last_save_rows = int(payload["history"]["rows_total"])
        self._emit(ev.SnapshotSaved(str(path), reason))
        return path

    @property
    def last_saved_rows(self) -> int:
        """rows_total held by the last snapshot this run saved or was resumed from: equal to
        `history.rows_total` means nothing new to save."""
        return self._last_save_rows

    def _save_quietly(self, reason: str) -> None:
        """A save the worker makes on its own: a failure warns, training goes on."""
        try:
            self.save_snapshot(reason)
        except FreqtuiError as exc:
            self._emit(ev.Warning(f"snapshot not saved ({reason}): {exc}"))

    # ---- the worker --------------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        self._events.put(event)

    def _work(self) -> None:
        torch.set_num_threads(1)  # an L = 1 step is far too small to split across threads
        self.status = "running"
        try:
            prepare = getattr(self.trainer, "prepare", None)
            if prepare is not None:  # compile first, so the wait shows as its own step
                self.status = "compiling"
                prepare(self._emit)
            if self._state_check:
                self.status = "checking"
                check = self.trainer.state_check()
                self._emit(
                    ev.StateCheckDone(check.passed, check.rows, check.rss_growth_mb, check.detail)
                )
                if not check.passed:
                    raise FreqtuiError(f"state check failed: {check.detail}")
            self.status = "running"
            self._loop()
        except Exception as exc:  # the app must stay up: a failure is an event
            self.status = "failed"
            msg = str(exc) if isinstance(exc, FreqtuiError) else f"{type(exc).__name__}: {exc}"
            self._emit(ev.Failed(msg))

    def _loop(self) -> None:
        tr, cfg = self.trainer, self.config
        nb = cfg.n_blocks
        ema = [None] * nb
        ema_all: float | None = None
        chunk_rows = 8
        mem: deque[tuple[int, float]] = deque(maxlen=64)
        epoch_loss_sum, epoch_rows = 0.0, 0
        rate_rows, rate_t = deque(maxlen=20), deque(maxlen=20)
        while not tr.finished:
            if self._stop.is_set():
                break
            if not self._running.is_set():
                self.status = "paused"
                self._emit(ev.Paused(tr.row))
                while not self._running.is_set() and not self._stop.is_set():
                    self._wake.wait()
                    self._wake.clear()
                    if self._eval_request.is_set():  # the weights are still: evaluate now
                        self._eval_request.clear()
                        self._evaluate()
                        mem.clear()
                if self._stop.is_set():
                    break
                self.status = "running"
                self._emit(ev.Resumed(tr.row))
            if self._eval_request.is_set():
                self._eval_request.clear()
                self._evaluate()
                mem.clear()  # an evaluation's one-off allocations are not a leak
            t0 = time.perf_counter()
            with self._lock:  # a capture sees the trainer and the row count agree
                chunk = tr.train_rows(chunk_rows)
                dt = time.perf_counter() - t0
                self.history.train_seconds += dt
                self.history.rows_total += chunk.rows
            if chunk.rows:
                chunk_rows = int(np.clip(chunk.rows * CHUNK_SECONDS / max(dt, 1e-6), 1, 50_000))
                rate_rows.append(chunk.rows)
                rate_t.append(dt)
                for b in range(nb):
                    n = int(chunk.rows_by_block[b])
                    if n:
                        mean = float(chunk.loss_sum_by_block[b] / n)
                        w = 1 - (1 - 1 / EMA_ROWS) ** n
                        ema[b] = mean if ema[b] is None else ema[b] + w * (mean - ema[b])
                w = 1 - (1 - 1 / EMA_ROWS) ** chunk.rows
                ema_all = (
                    chunk.online_loss
                    if ema_all is None
                    else ema_all + w * (chunk.online_loss - ema_all)
                )
                if not math.isfinite(ema_all):
                    raise FreqtuiError(
                        f"online loss is {ema_all} at epoch {tr.epoch + 1}, row {tr.row}"
                    )
                epoch_loss_sum += float(chunk.loss_sum_by_block.sum())
                epoch_rows += chunk.rows
                with self._lock:
                    self.history.add_online(self.history.rows_total, chunk.block, ema_all)
                rss = rss_mb()
                mem.append((self.history.rows_total, rss))
                self._emit(self._stats(chunk, ema, ema_all, rss, mem, rate_rows, rate_t))
            if tr.row >= tr.rows_per_epoch:
                if epoch_rows:  # none when resumed from a snapshot taken at the epoch's end
                    self._emit(ev.EpochDone(tr.epoch + 1, epoch_loss_sum / epoch_rows))
                epoch_loss_sum, epoch_rows = 0.0, 0
                evals = self.history.evals
                if not evals or evals[-1]["rows_total"] != self.history.rows_total:
                    self._evaluate()  # (a snapshot may hold this epoch's evaluation already)
                    mem.clear()
                with self._lock:
                    tr.end_epoch()
            if (
                self.autosave_every
                and self.history.rows_total - self._last_save_rows >= self.autosave_every
            ):
                self._save_quietly("autosave")
                mem.clear()
        if self.save_on_end:
            self._save_quietly("end")
        self.status = "finished" if tr.finished else "stopped"
        self._emit(ev.Finished(self.history.rows_total, stopped=not tr.finished))

    def _evaluate(self) -> None:
        previous = self.status
        self.status = "evaluating"
        tr = self.trainer
        self._emit(ev.EvalStarted(tr.epoch + 1, tr.row))
        t0 = time.perf_counter()
        with self._lock:
            result = evaluate(self.model, self.config)
        self.last_eval = result
        done = ev.EvalDone(
            epoch=tr.epoch + 1,
            row=tr.row,
            rows_total=self.history.rows_total,
            train=result.train,
            test=result.test,
            seconds=time.perf_counter() - t0,
            test_outputs=result.test_outputs,
        )
        with self._lock:
            self.history.add_eval(done)
        self._emit(done)
        self.status = previous

    def _stats(self, chunk, ema, ema_all, rss, mem, rate_rows, rate_t) -> ev.StepStats:
        tr, cfg = self.trainer, self.config
        rate = sum(rate_rows) / max(sum(rate_t), 1e-9)
        left = (cfg.epochs - tr.epoch) * tr.rows_per_epoch - tr.row
        slope = 0.0
        if len(mem) >= 16 and mem[-1][0] > mem[0][0]:
            xs = np.array([m[0] for m in mem], dtype=float)
            ys = np.array([m[1] for m in mem])
            slope = float(np.polyfit(xs, ys, 1)[0] * 10_000)
        span = mem[-1][0] - mem[0][0] if mem else 0
        h, c = tr.carried_state
        gauges = hidden_gauges(self.model, tr.last_input, h, c)
        return ev.StepStats(
            epoch=tr.epoch + 1,
            epochs=cfg.epochs,
            row=tr.row,
            rows_per_epoch=tr.rows_per_epoch,
            block=chunk.block,
            rows_total=self.history.rows_total,
            rows_per_s=rate,
            elapsed_s=self.history.train_seconds,
            eta_s=left / rate if rate > 0 else float("inf"),
            online_loss=ema_all,
            online_loss_by_block=tuple(ema),
            rss_mb=rss,
            rss_slope_mb_per_10k=slope,
            leak_warning=span >= 10_000 and slope > LEAK_MB_PER_10K,
            h_norm=gauges[0],
            c_norm=gauges[1],
            saturated=gauges[2],
            gate_i=gauges[3],
            gate_f=gauges[4],
            gate_o=gauges[5],
            live_t=tuple(float(v) for v in chunk.live_t),
            live_target=tuple(float(v) for v in chunk.live_target),
            live_output=tuple(float(v) for v in chunk.live_output),
        )


def _clone(obj: Any) -> Any:
    """Deep-copy tensors inside nested dicts/lists so a capture cannot change later."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.copy()
    return obj
