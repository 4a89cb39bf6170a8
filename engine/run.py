"""TrainingRun: one trainer in a worker thread, a small controller, and a stream of events.

The worker only emits events (engine/events.py); whoever drives it (the CLI, the console)
drains them on its own thread. Pause parks the worker on a threading.Event between chunks
of rows (a chunk is kept near 50 ms), so a paused run uses no CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import events as ev
from engine.config import RunConfig, field_namer
from engine.errors import FreqtuiError
from engine.evaluation import (
    OscillatorDiagnostics,
    evaluate,
    frozen_mse,
    mse_of,
    oscillator_diagnostics,
    predict,
)
from engine.history import EvalRecord, History
from engine.model import FrequencyLSTM, build_model
from engine.progress import Meters
from engine.signals import SignalSet, test_set, train_set
from engine.store import lock, sessions, writable
from engine.store.files import now_iso, save_weights
from engine.store.snapshot import Snapshot
from engine.training import make_trainer
from engine.training.base import Trainer, rss_mb

# RunConfig fields a resume may change: none of them changes the science of the run
RESUMABLE_CHANGES = ("epochs",)


def default_autosave(rows_per_epoch: int) -> int:
    """Every half epoch and at least every AUTOSAVE_MIN_ROWS rows (engine/store/sessions.py): a
    method that trains a whole window of rows per step (clock: 80,000) would otherwise
    save after every step."""
    return max(sessions.AUTOSAVE_MIN_ROWS, rows_per_epoch // 2)


@dataclass(frozen=True)
class RunView:
    """A read-only picture of a run for whoever shows it: where it stands and its past."""

    config: RunConfig
    backend: str  # the path that actually trains ("torch" or "fused")
    state: ev.RunState
    paused: bool
    epoch: int  # 1-based epoch being trained (epochs + 1 once finished)
    row: int  # rows done in that epoch
    rows_per_epoch: int
    finished: bool
    planned_epochs: int  # the run's length as it stands (a clock plans its own polish)
    rows_total: int
    online: tuple[tuple[int, int, float], ...]  # (rows_total, block, smoothed online loss)
    evals: tuple[EvalRecord, ...]  # every frozen evaluation, oldest first
    # (epoch, mean online loss, mean online loss per block) of every epoch trained
    epochs: tuple[tuple[int, float, tuple[float | None, ...]], ...] = ()
    schedule: tuple[tuple[str, str], ...] = ()  # the method's schedule now
    blocks_together: bool = False  # every step trains all blocks at once


class TrainingRun:
    """Owns a model, its trainer and the worker thread; the one door the UI goes through.

    `TrainingRun(config)` opens a new run and `resume` continues a saved one (refusing a
    change that would alter its science); `claim` owns the session before the first row
    and `hand_over` swaps one session for another; `start`, `pause`/`unpause`, `stop`,
    `save_snapshot`, `request_eval` drive it; `drain` hands out its events and `view` a
    read-only picture.

    Snapshots go to `sessions_root / run_id / latest.pt` (engine/store/sessions.py): on
    `save_snapshot()`, every `autosave_every` rows, and when the run ends if `save_on_end`.
    `TrainingRun.resume` builds a run that continues one exactly. Building a run changes
    no process-wide state: a resumed run's torch RNG state is set when its worker starts.
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
        # a resumed run draws what the saved one would have drawn: the state is set on the
        # process's torch RNG when the worker starts, and until then a capture saves it
        self._torch_rng: torch.Tensor | None = None if torch_rng is None else torch_rng.clone()
        self.history = history if history is not None else History()
        self.sessions_root: Path = sessions.sessions_dir(sessions_root)
        self.run_id: str = run_id or sessions.new_run_id(self.config.method, self.sessions_root)
        if autosave_every is not None and autosave_every < 1:
            autosave_every = None  # 0 = off
        self.autosave_every: int | None = autosave_every
        self.save_on_end = save_on_end
        self._last_save_rows = self.history.rows_total
        self._last_attempt_rows = self.history.rows_total  # autosave retries a failure this late
        self.save_error: str | None = None  # why the newest save failed, until one works
        self._save_lock = threading.Lock()  # one snapshot write at a time
        self.status = ev.RunState.READY
        self._state_check = state_check and trainer_state is None
        self._events: queue.SimpleQueue[ev.Event] = queue.SimpleQueue()
        self._running = threading.Event()  # cleared = paused
        self._running.set()
        self._stop = threading.Event()
        self._eval_request = threading.Event()
        self._wake = threading.Event()  # wakes a paused worker: unpause, stop, evaluate
        self._lock = threading.RLock()  # held while the weights or the trainer change
        self._thread: threading.Thread | None = None
        # what a resume with another --epochs changes in the method's schedule (shown
        # as a warning when the worker starts); empty when nothing does
        self.resume_note = ""
        # set by `resume` when a file that stands alone became a new session: says so
        self.origin = ""
        self._session: lock.SessionLock | None = None  # this run's session, once claimed

    @classmethod
    def resume(
        cls,
        id_or_path: str | Path,
        epochs: int | None = None,
        *,
        changes: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        root: Path | None = None,
        autosave_every: int | None = None,
        save_on_end: bool = False,
        snapshot: Snapshot | None = None,
    ) -> TrainingRun:
        """A run that continues a snapshot (a path, a session folder, a run id or a unique
        prefix of one under `root`) exactly: weights, trainer state (optimizer, carried
        state, position, its RNGs), torch RNG and history. A session's snapshot keeps its
        run id and saves back into its session folder; a file that stands alone
        (models/*.pt) starts a new session under `root` and is never written to, nor
        anything beside it (`origin` says so).

        `changes`: RunConfig fields the caller asks for (None values are not asked for;
        `options` is merged into the saved options). Of them only RESUMABLE_CHANGES may
        differ from the saved run: `epochs` may grow, never to or below those done; any
        other change is refused, naming the field as `names` spells it for the user (the
        CLI: its flags; else engine/config.py `field_word`). `epochs` is short for
        changes={"epochs": epochs}. `snapshot`: the file's content when the caller has read
        it already (`sessions.read_snapshot`), so it is read once."""
        root = sessions.sessions_dir(root)
        path = sessions.resolve(id_or_path, root)
        snap = snapshot if snapshot is not None else sessions.read_snapshot(path)
        asked = {k: v for k, v in (changes or {}).items() if v is not None}
        if epochs is not None:
            asked["epochs"] = epochs
        config = snap.config
        old_epochs = config.epochs
        name = field_namer(names)
        epochs = _refuse_changes(config, asked, path, name)
        if epochs is not None:
            done = snap.epochs_done
            if epochs <= done:  # asked for explicitly, a length already trained is a mistake
                raise FreqtuiError(
                    f"{name('epochs')} {epochs}: {path} has already completed {done} "
                    f"of its {config.epochs} epoch(s); pass more than {done} to train further"
                )
            if epochs != config.epochs:
                config = config.replace(epochs=epochs).validated(names)
        run_id = snap.run_id
        # save back into the folder it was loaded from: a session's latest.pt or
        # previous.pt names its session by its folder (a copied folder is its own session,
        # never the original's, whose id its files still carry); a file that stands alone
        # starts a session of its own under the sessions root: resuming a committed model
        # twice must not continue (and overwrite) the first resume's session
        folder = sessions.session_folder_of(path, run_id)
        home, run_id = (folder.parent, folder.name) if folder is not None else (root, "")
        try:  # built and checked before a new session's folder is claimed: a file that
            # cannot be resumed leaves nothing behind
            run = cls(
                config,
                model=snap.build_model(),
                trainer_state=snap.trainer,
                history=snap.history,
                run_id=run_id or "unclaimed",
                sessions_root=home,
                autosave_every=autosave_every,
                save_on_end=save_on_end,
                torch_rng=snap.torch_rng,
            )
        except FreqtuiError as exc:
            raise FreqtuiError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FreqtuiError(
                f"{path}: the trainer state does not fit method {config.method!r} ({first[:160]})"
            ) from None
        run._check_trainer_fits(path)
        if not run_id:
            run.run_id = sessions.new_run_id(config.method, root)
            run.origin = (
                f"{path} opened as a new session {run.run_id} under {root} "
                "(the file itself is never written)"
            )
        if config.epochs != old_epochs:
            # the saved trainer, asked about the length it was not trained for
            saved = run.trainer
            note = saved.length_change_note(old_epochs, config.epochs)
            if note:
                run.resume_note = f"{name('epochs')} {config.epochs} (was {old_epochs}): {note}"
        return run

    # ---- the session: owned before the first row, handed from one run to the next -------
    def claim(self, out: Path | None = None) -> lock.SessionLock:
        """Own this run's session before its first row: prove its folder (and `out`'s, a
        file the weights go to at the end) can take a file, then take its lock
        (engine/store/lock.py: a session another process runs is refused, naming that
        process). FreqtuiError says why not; the lock is held until `release` or the end
        of the process."""
        folder = self.sessions_root / self.run_id
        writable.check_session(folder, out)
        self._session = lock.acquire(folder)
        return self._session

    def release(self) -> None:
        """Give up this run's session: another process may run it now."""
        lock.release(self.sessions_root / self.run_id)
        self._session = None

    def hand_over(self, target: str | Path, stop: Callable[[], None]) -> TrainingRun:
        """Continue `target` (a snapshot file, a session folder or an id under this run's
        sessions root) in this run's place; returns the new run, not started, with this
        run's sessions root, autosave and save-at-end. In order:

        - the target is read and checked, and its session locked, before anything stops:
          a bad file or a session another process owns leaves this run as it was;
        - `stop()` stops (and saves) this run: the target may be this run's own session,
          whose newest state (read again after the save) the new run continues; a run
          still alive after it (stuck in a step) is refused, so no late save of this run
          can land beside the new one;
        - the new run is built: if it cannot be, the target's lock goes again and this run
          keeps its own;
        - the new run's session is locked (the new session of a file that stands alone)
          before this run's session is released.

        FreqtuiError says why the hand-over did not happen; this run then keeps its lock."""
        root = self.sessions_root
        mine = lock.folder_key(root / self.run_id)
        path = sessions.resolve(target, root)
        snap = sessions.read_snapshot(path)
        folder = sessions.session_folder_of(path, snap.run_id)
        taken = lock.acquire(folder) if folder is not None else None
        try:
            stop()
            if self.alive:  # stuck in a step: its save when it leaves would race the new run
                raise FreqtuiError(
                    "the trainer did not stop in time (busy in a step it cannot leave): "
                    "nothing was handed over; try again once it has stopped"
                )
            if taken is not None and taken.folder == mine:
                snap = sessions.read_snapshot(path)  # the stop saved its newest state there
            new = TrainingRun.resume(
                path,
                root=root,
                autosave_every=self.autosave_every,
                save_on_end=self.save_on_end,
                snapshot=snap,
            )
        except FreqtuiError:
            if taken is not None and taken.folder != mine:
                taken.release()
            raise
        home = new.sessions_root / new.run_id
        if taken is not None and taken.folder == lock.folder_key(home):
            new._session = taken
        else:  # a file that stood alone: its new session's own folder
            with contextlib.suppress(FreqtuiError):
                new._session = lock.acquire(home)
            if taken is not None:
                taken.release()
        if new._session is not None and new._session.folder == mine:
            self._session = None  # the same session goes on: its lock is the new run's now
        else:
            self.release()  # the old session is free for others now
        return new

    def _check_trainer_fits(self, path: Path) -> None:
        """Shapes the trainer loaded must match the model: carried state and optimizer."""
        config = self.config
        h, c = self.trainer.carried_state
        for name, t in (("h", h), ("c", c)):
            if t.dim() != 3 or t.shape[0] != config.num_layers or t.shape[-1] != config.hidden_size:
                raise FreqtuiError(
                    f"{path}: incompatible carried state: {name} has shape {tuple(t.shape)}, a "
                    f"model with {config.num_layers} layer(s) of hidden size "
                    f"{config.hidden_size} needs ({config.num_layers}, batch, {config.hidden_size})"
                )
        optimizer = self.trainer.optimizer
        for group in optimizer.param_groups:
            for p in group["params"]:
                for key, v in optimizer.state.get(p, {}).items():
                    if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != p.shape:
                        raise FreqtuiError(
                            f"{path}: incompatible optimizer state: {key} has shape "
                            f"{tuple(v.shape)} for a parameter of shape {tuple(p.shape)}"
                        )

    # ---- read-only view ----------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The path that actually trains: a method without the backend asked for (or
        whose kernel is unavailable) trains on torch."""
        return self.trainer.backend

    @property
    def rows_per_epoch(self) -> int:
        return self.trainer.rows_per_epoch

    @property
    def finished(self) -> bool:
        return self.trainer.finished

    def view(self) -> RunView:
        """Where the run stands and its past, consistent (taken between two chunks)."""
        with self._lock:
            tr, h = self.trainer, self.history
            return RunView(
                config=self.config,
                backend=tr.backend,
                state=self.status,
                paused=self.paused,
                epoch=tr.epoch + 1,
                row=tr.row,
                rows_per_epoch=tr.rows_per_epoch,
                finished=tr.finished,
                planned_epochs=tr.planned_epochs,
                rows_total=h.rows_total,
                online=tuple(h.online),
                evals=tuple(h.evals),
                epochs=tuple(h.epochs),
                schedule=tr.schedule(),
                blocks_together=tr.blocks_together,
            )

    def frozen_test_outputs(self) -> np.ndarray:
        """The model's output (F, N) on the test set with the weights as they are: for a
        display only (a resumed run's plots). Taken between two chunks; recorded nowhere,
        and it changes no state (no RNG is drawn, no weight moves)."""
        with self._lock:
            return predict(self.model, test_set(self.config))

    def frozen_evaluation(self) -> tuple[EvalRecord, np.ndarray]:
        """A frozen evaluation (train and test) of the weights as they are, stamped with
        where the run stands, and the (F, N) test outputs: for a display only (a resumed
        run's saved weights, shown by the loss table and the plots alike). The newest
        recorded evaluation is returned when it is of these very weights (taken at this
        row, the very same test MSE), which spares the train pass. Taken between two chunks;
        recorded nowhere, and it changes no state (no RNG is drawn, no weight moves)."""
        with self._lock:
            tr, h = self.trainer, self.history
            test = test_set(self.config)
            outputs = predict(self.model, test)
            test_mse = mse_of(outputs, test)
            last = h.evals[-1] if h.evals else None
            if (
                last is not None
                and last.rows_total == h.rows_total
                and tuple(last.test.per_block) == tuple(test_mse.per_block)
            ):
                return last, outputs
            train = frozen_mse(self.model, train_set(self.config))
            record = EvalRecord(tr.epoch + 1, tr.row, h.rows_total, train, test_mse)
        return record, outputs

    def test_signal(self) -> SignalSet:
        """The run's test set (numpy, built from the config alone): what a display draws
        the targets and S from. Reads no state of the run; safe from any thread."""
        return test_set(self.config)

    def diagnostics(self, outputs: np.ndarray) -> OscillatorDiagnostics:
        """The oscillator's diagnostics (engine/evaluation.py) of test outputs (F, N), as
        an evaluation sent them: for a display; reads no state of the run, any thread."""
        return oscillator_diagnostics(outputs, test_set(self.config))

    def set_autosave(self, rows: int | None = None) -> None:
        """Save every `rows` rows (0 = only when asked or at the end); None = the default
        (`default_autosave`)."""
        if rows is None:
            rows = default_autosave(self.trainer.rows_per_epoch)
        self.autosave_every = rows or None

    def save_weights(self, path: Path) -> None:
        """The trained weights with the config and history (kind "weights")."""
        with self._lock:
            save_weights(path, self.model, self.config, self.history)

    # ---- controller ------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a TrainingRun starts once")
        self._thread = threading.Thread(target=self._work, name="freqtui-trainer", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self._running.clear()

    def unpause(self) -> None:
        """Continue a paused run (`TrainingRun.resume` continues a saved one)."""
        self._running.set()
        self._wake.set()

    def toggle_pause(self) -> bool:
        """Pause if running, resume if paused; returns True when now paused."""
        if self._running.is_set():
            self.pause()
            return True
        self.unpause()
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

    def snapshot(self) -> Snapshot:
        """Everything needed to continue exactly, taken between two chunks: this run's
        snapshot as it stands, saved now (copies: training on changes none of it)."""
        with self._lock:
            return Snapshot(
                kind="snapshot",
                config=self.config,
                model={k: v.detach().clone() for k, v in self.model.state_dict().items()},
                history=self.history.copy(),
                rows_per_epoch=self.trainer.rows_per_epoch,
                trainer=_clone(self.trainer.state_dict()),
                torch_rng=(
                    torch.random.get_rng_state()
                    if self._torch_rng is None
                    else self._torch_rng.clone()
                ),
                run_id=self.run_id,
                saved_at=now_iso(),
                weights=self.trainer.weights_note(),
            )

    def capture(self) -> dict[str, Any]:
        """`snapshot()` as a file holds it: plain values and tensors (torch.save-able)."""
        return self.snapshot().to_dict()

    def save_snapshot(self, reason: str = "key") -> Path:
        """Write a snapshot now (from any thread) and emit SnapshotSaved; returns its path.
        The state is taken between two chunks; the write is atomic. FreqtuiError if the
        file cannot be written (or the weights hold NaN: the last snapshot then stays)."""
        with self._save_lock:
            snap = self.snapshot()
            snap.refuse_nonfinite()  # before the write: broken weights are no disk outage
            try:
                path = sessions.write_snapshot(self.sessions_root / self.run_id, snap)
            except FreqtuiError as exc:
                self.save_error = str(exc)  # the newest state is not on disk (until a save works)
                raise
            self._last_save_rows = snap.history.rows_total
            self._last_attempt_rows = max(self._last_attempt_rows, self._last_save_rows)
            self.save_error = None  # the newest state is on disk again
        self._emit(ev.SnapshotSaved(str(path), reason))
        return path

    @property
    def unsaved_rows(self) -> int:
        """Rows trained since the last snapshot this run saved or was resumed from."""
        return self.history.rows_total - self._last_save_rows

    def _save_quietly(self, reason: str) -> None:
        """A save the worker makes on its own: a failure warns, training goes on."""
        self._last_attempt_rows = self.history.rows_total
        first = self.save_error is None
        try:
            self.save_snapshot(reason)
        except FreqtuiError as exc:
            if first:  # one warning per outage, not one per chunk
                self._emit(ev.SaveFailed(f"snapshot not saved ({reason}): {exc}"))
            self.save_error = str(exc)

    # ---- the worker --------------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        self._events.put(event)

    def _work(self) -> None:
        torch.set_num_threads(1)  # an L = 1 step is far too small to split across threads
        if self._torch_rng is not None:
            with self._lock:
                torch.random.set_rng_state(self._torch_rng)
                self._torch_rng = None
        self.status = ev.RunState.RUNNING
        try:
            if self.trainer.backend != "torch":  # compile first: the wait is its own step
                self.status = ev.RunState.COMPILING
            if self.resume_note:
                self._emit(ev.RunWarning(self.resume_note))
            self.trainer.prepare(self._emit)
            if self._state_check:
                self.status = ev.RunState.CHECKING
                check = self.trainer.state_check()
                self._emit(
                    ev.StateCheckDone(check.passed, check.rows, check.rss_growth_mb, check.detail)
                )
                if not check.passed:
                    raise FreqtuiError(f"state check failed: {check.detail}")
            self.status = ev.RunState.RUNNING
            self._loop()
        except Exception as exc:  # the app must stay up: a failure is an event
            self.status = ev.RunState.FAILED
            msg = str(exc) if isinstance(exc, FreqtuiError) else f"{type(exc).__name__}: {exc}"
            self._emit(ev.Failed(msg))

    def _loop(self) -> None:
        tr = self.trainer
        meters = Meters(self.config.n_blocks)
        schedule_shown: tuple | None = None
        while not tr.finished:
            if self._stop.is_set():
                break
            if not self._running.is_set():
                self.status = ev.RunState.PAUSED
                self._emit(ev.Paused(tr.row))
                while not self._running.is_set() and not self._stop.is_set():
                    self._wake.wait()
                    self._wake.clear()
                    if self._eval_request.is_set():  # the weights are still: evaluate now
                        self._eval_request.clear()
                        self._evaluate()
                        meters.forget_memory()
                if self._stop.is_set():
                    break
                self.status = ev.RunState.RUNNING
                self._emit(ev.Resumed(tr.row))
            if self._eval_request.is_set():
                self._eval_request.clear()
                self._evaluate()
                meters.forget_memory()
            t0 = time.perf_counter()
            with self._lock:  # a capture sees the trainer and the row count agree
                chunk = tr.train_rows(meters.chunk_rows)
                dt = time.perf_counter() - t0
                self.history.train_seconds += dt
                self.history.rows_total += chunk.rows
            if chunk.rows:
                meters.add(chunk, dt)
                with self._lock:
                    self.history.add_online(
                        self.history.rows_total, chunk.block, meters.ema_all, tuple(meters.ema)
                    )
                rss = rss_mb()
                meters.add_memory(self.history.rows_total, rss)
                stats = self._stats(chunk, meters, rss)
                # a schedule change is an event of its own; a value that moves continuously
                # (an annealed rate) only shows live
                moved = tuple(p for p in stats.schedule if p[0] not in tr.schedule_live)
                if moved != schedule_shown:
                    if moved or schedule_shown:
                        with self._lock:
                            self.history.add_schedule(
                                self.history.rows_total, tr.epoch + 1, tr.row, stats.schedule
                            )
                        self._emit(ev.ScheduleChanged(stats.schedule))
                    schedule_shown = moved
                self._emit(stats)
            if tr.row >= tr.rows_per_epoch:
                means = meters.epoch_means()  # none when resumed at the epoch's end
                if means is not None:
                    done = ev.EpochDone(tr.epoch + 1, *means)
                    with self._lock:
                        self.history.add_epoch(
                            done.epoch, done.online_loss, done.online_loss_by_block
                        )
                    self._emit(done)
                meters.new_epoch()
                evals = self.history.evals
                if not evals or evals[-1].rows_total != self.history.rows_total:
                    self._evaluate()  # (a snapshot may hold this epoch's evaluation already)
                    meters.forget_memory()
                with self._lock:
                    tr.end_epoch()
            if (
                self.autosave_every
                and self.history.rows_total - self._last_attempt_rows >= self.autosave_every
            ):
                self._save_quietly("autosave")
                meters.forget_memory()
        if self.save_on_end:
            self._save_quietly("end")
        self.status = ev.RunState.FINISHED if tr.finished else ev.RunState.STOPPED
        done = tr.finished
        self._emit(
            ev.Finished(
                self.history.rows_total,
                stopped=not done,
                # a finished run reports its last epoch whole, as the progress bar does
                epoch=tr.epoch if done else tr.epoch + 1,
                epochs=tr.planned_epochs,
                row=tr.rows_per_epoch if done else tr.row,
                rows_per_epoch=tr.rows_per_epoch,
            )
        )

    def _evaluate(self) -> None:
        previous = self.status
        self.status = ev.RunState.EVALUATING
        tr = self.trainer
        self._emit(ev.EvalStarted(tr.epoch + 1, tr.row))
        t0 = time.perf_counter()
        with self._lock:
            result = evaluate(self.model, self.config)
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
            self.history.add_eval(done.record)
        self._emit(done)
        self.status = previous

    def _stats(self, chunk, meters: Meters, rss: float) -> ev.StepStats:
        tr = self.trainer
        rate = meters.rate()
        left = (tr.planned_epochs - tr.epoch) * tr.rows_per_epoch - tr.row
        slope, leak = meters.memory_slope()
        gauges = self.model.gauges(tr.last_input, tr.carried_state)
        return ev.StepStats(
            epoch=tr.epoch + 1,
            epochs=tr.planned_epochs,
            row=tr.row,
            rows_per_epoch=tr.rows_per_epoch,
            block=chunk.block,
            rows_total=self.history.rows_total,
            rows_per_s=rate,
            elapsed_s=self.history.train_seconds,
            eta_s=left / rate if rate > 0 else float("inf"),
            online_loss=meters.ema_all,
            online_loss_by_block=tuple(meters.ema),
            rss_mb=rss,
            rss_slope_mb_per_10k=slope,
            leak_warning=leak,
            **dataclasses.asdict(gauges),  # h_norm, c_norm, saturated, gate_i/f/o
            **chunk.live(),  # live_t, live_target, live_output
            schedule=tr.schedule(),
            blocks_together=tr.blocks_together,
        )


def _refuse_changes(
    config: RunConfig, asked: Mapping[str, Any], path: Path, name: Callable[[str], str]
) -> int | None:
    """The flag policy of a resume: every change `asked` of the saved `config` that would
    change the science is refused, naming its field; returns the epochs asked for."""
    for field, value in asked.items():
        if field in RESUMABLE_CHANGES:
            continue
        if field == "options":
            if {**config.options, **value} != config.options:
                raise FreqtuiError(
                    f"{name('options')} cannot change when resuming {path} (it was trained "
                    f"with {config.options or 'no options'}); start a new run for other options"
                )
            continue
        if value != getattr(config, field):
            allowed = ", ".join(name(n) for n in RESUMABLE_CHANGES)
            raise FreqtuiError(
                f"{name(field)} cannot change when resuming {path} (it was trained with "
                f"{getattr(config, field)!r}); only {allowed} may change; start a new run "
                "for another setting"
            )
    return asked.get("epochs")


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
