"""The console: a Textual app over one TrainingRun.

The trainer runs in the run's worker thread and only emits events. This app drains them
on the UI thread at POLL_HZ and passes every non-replaceable event on in order, and only
the newest StepStats, at most STATS_HZ times a second: a flood of progress costs one
redraw, and the UI thread leaves the CPU to the trainer. Each event goes as a message
(freqtui/messages.py) to the widgets that hold its data and handle it themselves; the app
keeps only its own part: the log, the notices and whether the run failed.

Widgets are touched on the UI thread only, and it does none of the engine's file or torch
work: the plots' diagnostics and a resumed run's frozen pass run in worker threads; `o`
opens the session browser at once and lists the snapshots in its worker
(screens/sessions.py); the hand-over to a chosen session (reading it, stopping and saving
this run, building the new one) and `q`'s stop and final save each run in a thread the
UI awaits, then show their events and notices here. Keys pressed meanwhile wait their
turn, and a second hand-over or quit started while one is under way does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import singledispatchmethod
from typing import Any, NoReturn, TypeVar

import numpy as np
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message

from engine import events as ev
from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.run import TrainingRun
from engine.store.compare import list_models
from engine.store.sessions import LATEST, SessionInfo, list_sessions, sessions_dir
from freqtui import messages
from freqtui.screens.help import HelpScreen
from freqtui.screens.main import MainScreen
from freqtui.screens.sessions import SessionBrowser
from freqtui.shutdown import (
    EXIT_GRACE_S,
    STOP_WAIT_S,
    StopSignals,
    exit_code,
    on_terminal_gone,
    save_failure_lines,
    say,
    signal_name,
    stop_and_save,
    stop_lines,
)
from freqtui.text import describe, epochs_text, exit_message, position, stamp
from freqtui.widgets.event_log import EventLog
from freqtui.widgets.hidden_panel import HiddenPanel
from freqtui.widgets.loss_panel import LossPanel
from freqtui.widgets.memory_panel import MemoryPanel
from freqtui.widgets.plots_panel import PlotsPanel
from freqtui.widgets.run_panel import RunPanel
from freqtui.widgets.status_bar import StatusBar

POLL_HZ = 10  # event drains per second (the issue allows up to 20)
STATS_HZ = 5  # redraws of the live numbers: each screen update costs CPU the trainer wants
STOP_TIMEOUT_S = 1.5  # q must end the app within 2 s even when the worker cannot stop

T = TypeVar("T")


async def in_thread(name: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Await `fn` run in a daemon thread of its own: not in the event loop's executor,
    where Textual's thread workers (plots, listings, frozen passes) could keep a quit
    waiting, and never a thread the process must join to end."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled (the app closed)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result, error = None, None
        try:
            result = fn(*args, **kw)
        except BaseException as exc:  # handed to the awaiting task, raised there
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future


class Stopping(Message):
    """A stop signal arrived; the stop thread is stopping and saving the run."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum


class FreqtuiApp(App[int]):
    TITLE = "freqtui"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-tall")]
    ENABLE_COMMAND_PALETTE = False  # its footer slot is needed for the keys at 80 columns
    BINDINGS = [
        Binding("space", "toggle_pause", "pause"),
        Binding("e", "evaluate", "eval"),
        Binding("1", "focus_block(0)", "f1", show=False),
        Binding("2", "focus_block(1)", "f2", show=False),
        Binding("3", "focus_block(2)", "f3", show=False),
        Binding("4", "focus_block(3)", "f4", show=False),
        Binding("0", "focus_block(-1)", "focus", key_display="0-4"),
        Binding("p", "next_plot", "plot"),
        Binding("v", "toggle_view", "view"),
        Binding("s", "save", "save"),
        Binding("r", "toggle_run_panel", "run panel", show=False),
        Binding("x", "export", "export", show=False),
        Binding("o", "open_sessions", "sessions"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        config: RunConfig | None = None,
        run: TrainingRun | None = None,
        *,
        autostart: bool = True,
    ) -> None:
        super().__init__()
        if run is None:
            run = TrainingRun(config if config is not None else RunConfig())
        self.training = run
        self.autostart = autostart
        self.failure: str | None = None
        self._stats: ev.StepStats | None = None  # newest progress not shown yet
        self._stats_shown_at = 0.0
        self._swapping = False
        self.exit_code = 0
        self.stop_signal: int | None = None  # run_app: the signal that stopped the console
        self.stopped = threading.Event()  # set once a signal's stop has saved
        self.stop_signals: StopSignals | None = None  # run_app's
        self.quitting = False  # q (or Ctrl-C) stopped and saved the run itself
        self.exit_message = ""  # the session and its resume command, printed after exit

    @property
    def config(self) -> RunConfig:
        return self.training.config

    # ---- layout ----------------------------------------------------------------------
    def get_default_screen(self) -> MainScreen:
        self.main = MainScreen(id="main")
        return self.main

    def _bind(self) -> None:
        """Keep the main screen's widgets at hand (app queries search the top screen)."""
        main = self.main
        self.status_bar = main.query_one(StatusBar)
        self.run_panel = main.query_one(RunPanel)
        self.loss_panel = main.query_one(LossPanel)
        self.memory_panel = main.query_one(MemoryPanel)
        self.hidden_panel = main.query_one(HiddenPanel)
        self.plots_panel = main.query_one(PlotsPanel)
        self.event_log = main.query_one(EventLog)
        # the widgets that handle each kind of message: each one holds the data it shows
        self.listeners = messages.listeners(main)

    def main_ready(self) -> None:
        """Called by the main screen once its widgets are mounted."""
        self._bind()
        self._show_past()
        if self.autostart and not self.training.alive:
            self.training.start()
        self.set_interval(1 / POLL_HZ, self.poll)
        if self.stop_signals is not None:
            self.stop_signals.claim()  # served (textual-serve): the web driver took them

    def watch_stop(self, stop: StopSignals) -> None:
        """run_app's stop thread. On SIGINT, SIGTERM, SIGHUP or a failed write to the
        terminal: stop and save off the UI thread (which may be stuck writing to a terminal
        that is gone), ask the UI to exit with 128 + signum, and end the process if it has
        not ended EXIT_GRACE_S later. A second signal changes nothing."""
        stop.event.wait()
        signum = stop.signum or signal.SIGHUP
        self.stop_signal = signum
        with contextlib.suppress(RuntimeError):  # thread-safe; RuntimeError: loop closed
            self.post_message(Stopping(signum))
        stop_and_save(self.training, "quit")
        self.stopped.set()
        code = exit_code(signum)
        with contextlib.suppress(RuntimeError):
            self.exit(code)
        stop.terminal_gone.wait(EXIT_GRACE_S)  # no use waiting for a terminal that is gone
        # still here: Textual's writer is stuck (its terminal is gone) and holds the UI thread
        ender = threading.Thread(target=finish, args=(self, code), daemon=True)
        ender.start()
        ender.join(EXIT_GRACE_S)  # the last lines may block on a stderr nobody reads
        os._exit(code)

    def on_stopping(self, message: Stopping) -> None:
        self.log_line(f"{signal_name(message.signum)}: stopping after the current chunk...")

    def _show_past(self) -> None:
        """A resumed run redraws its history; every run says where it starts."""
        view = self.training.view()
        self.status_bar.set_position(view.epoch, view.row, view.planned_epochs)
        epoch, row = position(view.epoch, view.row, view.planned_epochs, view.rows_per_epoch)
        if view.online or view.evals or view.epochs:
            self.loss_panel.load_history(view.online, view.evals, view.epochs)
        self.plots_panel.load_history(view.online, view.evals)
        cfg = view.config
        self.log_line(
            f"{cfg.method} ({view.backend}), {epochs_text(view)}, lr {cfg.lr:g}, phase scale {cfg.phase_scale:g}; "
            f"{'finished' if view.finished else 'starting'} at epoch {epoch}, row {row:,}"
        )
        run = self.training
        where = "" if run.sessions_root == sessions_dir(None) else f" in {run.sessions_root}"
        self.log_line(f"session {run.run_id}{where}")
        if run.origin:  # a models/ file: continued in a new session, itself never written
            self.log_line(run.origin, "bold")
            self.notify(run.origin, title="a new session", timeout=8)
        if view.evals or view.rows_total:
            # the plots need the model's outputs, which a snapshot does not keep: one frozen
            # evaluation of the saved weights, recorded nowhere and changing no state
            self._redraw_past_outputs(self.training)

    # ---- events (UI thread only) -----------------------------------------------------
    def poll(self) -> None:
        """Drain the run's events: each non-replaceable one in order, the newest progress."""
        if self._swapping:
            return
        self.handle_events(self.training.drain())
        self.status_bar.set_state(self.state_name())

    def handle_events(self, events: list[ev.Event], force: bool = False) -> None:
        """Every event in order; of the replaceable progress (StepStats) the newest is shown
        at most STATS_HZ times a second (or now, with `force`), a newer one replacing it
        meanwhile."""
        with self.batch_update():  # one screen update for all of it
            for e in events:
                if not e.replaceable:
                    self.handle_event(e)
                elif isinstance(e, ev.StepStats):
                    self._stats = e
                    self.deliver(messages.LiveRows, e)  # every chunk's rows: no gaps in the view
            s, now = self._stats, time.monotonic()
            if s is not None and (force or now - self._stats_shown_at >= 1 / STATS_HZ):
                self._stats, self._stats_shown_at = None, now
                self.deliver(messages.Progress, s)

    def handle_event(self, e: ev.Event) -> None:
        """One event that must be shown: to the widgets that hold its data, as a message
        they handle themselves; the app's own part at once (action_quit exits with the
        `exit_code` a Failed event drained just before sets)."""
        kind = messages.FOR_EVENT.get(type(e))
        if kind is not None:
            self.deliver(kind, e)
        self.note(e)

    def deliver(self, kind: type[messages.RunMessage], e: ev.Event) -> None:
        """`e` as a `kind` message to each widget of the main screen that handles one."""
        for widget in self.listeners.get(kind, ()):
            widget.post_message(kind(e))

    # the app's own part of an event: the log line, a notice, whether the run failed
    @singledispatchmethod
    def note(self, e: ev.Event) -> None:
        self._log_event(e)

    @note.register
    def _(self, e: ev.Failed) -> None:
        self.failure = e.message
        self.exit_code = 1
        self._log_event(e)
        self.notify(e.message, title="training failed", severity="error", timeout=10)

    @note.register
    def _(self, e: ev.Finished) -> None:
        self._log_event(e, "; q quits")
        if self.failure is None:
            self.log_line(self.farewell(), "bold")

    @note.register
    def _(self, e: ev.RunWarning) -> None:
        self._log_event(e)
        self.notify(e.message, severity="warning")

    @note.register
    def _(self, e: ev.SaveFailed) -> None:
        self._log_event(e)  # once per outage; the status bar keeps saying it
        self.notify(e.message, title="snapshot not saved", severity="error", timeout=30)

    def _log_event(self, e: ev.Event, tail: str = "") -> None:
        line = describe(e, self.training.rows_per_epoch)
        if line is not None:
            self.log_line(line.text + tail, line.style)

    def state_name(self) -> str:
        if self.failure is not None:
            return "failed"
        state = self.training.status
        busy = (
            ev.RunState.RUNNING,
            ev.RunState.COMPILING,
            ev.RunState.CHECKING,
            ev.RunState.EVALUATING,
        )
        name = "pausing" if self.training.paused and state in busy else state.value
        if self.training.save_error:  # until a save works again
            return f"{name} - not saved"
        return name

    def log_line(self, message: str, style: str = "") -> None:
        self.event_log.add(message, style)

    # ---- keys ------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        if not self.training.alive:
            self.notify("the trainer is not running", severity="warning")
            return
        paused = self.training.toggle_pause()
        self.status_bar.set_state(self.state_name())
        self.log_line("pausing after the current chunk..." if paused else "resuming...")

    def action_evaluate(self) -> None:
        if not self.training.alive:
            self.notify("the trainer is not running: nothing to evaluate", severity="warning")
            return
        self.training.request_eval()  # runs between two chunks, or at once while paused

    def action_focus_block(self, block: int) -> None:
        self.main.add_class("-plots")
        self.plots_panel.set_focus_block(None if block < 0 else block)

    def action_next_plot(self) -> None:
        self.main.add_class("-plots")
        self.plots_panel.next_tab()

    def action_toggle_view(self) -> None:
        if self.main.has_class("-wide"):
            self.notify(
                "panels and plots are both on screen at this width; v switches between "
                "them below 120 columns",
                timeout=4,
            )
            return
        self.main.toggle_class("-plots")

    def action_toggle_run_panel(self) -> None:
        self.run_panel.toggle()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_save(self) -> None:
        if self.quitting:  # q is saving the run already
            return
        if self.failure is not None:
            self.notify("the run failed: its weights are not worth a snapshot", severity="error")
            return
        self.log_line("saving a snapshot...")
        self._save_in_thread()

    def action_export(self) -> None:
        """x: the metric history as it stands, as CSV and JSON in the session folder."""
        from freqtui.export import export_run

        try:
            csv_path, json_path = export_run(self.training)
        except (FreqtuiError, OSError) as exc:
            self.notify(str(exc), title="not exported", severity="error")
            return
        self.log_line(f"metric history written: {csv_path} and {json_path.name}")
        self.notify(f"{csv_path}\n{json_path}", title="metric history written")

    @work(thread=True, exclusive=True, group="save")
    def _save_in_thread(self) -> None:
        # off the UI thread: the save waits for the end of the current chunk, then fsyncs
        try:
            self.training.save_snapshot("key")  # its SnapshotSaved event reaches the log
        except FreqtuiError as exc:
            self.call_from_thread(self.notify, str(exc), title="not saved", severity="error")

    def action_open_sessions(self) -> None:
        if isinstance(self.screen, SessionBrowser) or self._swapping or self.quitting:
            return
        root = self.training.sessions_root

        def listing() -> tuple[list[SessionInfo], list[SessionInfo]]:
            return list_sessions(root), list_models()  # in the browser's worker thread

        browser = SessionBrowser(None, str(root), self.training.run_id, listing=listing)
        self.push_screen(browser, self._resume_session)

    async def _resume_session(self, info: SessionInfo | None) -> None:
        """Stop (and save) the current run, then continue the chosen session in its place.
        The engine's part (reading the file, stopping and saving this run, building the new
        one) runs in a thread; the widgets change on this one afterwards."""
        if info is None or self._swapping or self.quitting:
            return
        self._swapping = True  # no drain while the runs change and the widgets are rebuilt
        try:
            old = self.training
            stopped: list[str | None] = []  # the stop's save error, once it has stopped

            def stop() -> None:  # in the hand-over's thread: engine work only
                stopped.append(stop_and_save(old, "switch", STOP_TIMEOUT_S))

            try:  # the engine checks the file and locks its session before this run stops
                new = await in_thread("freqtui-hand-over", old.hand_over, info.path, stop=stop)
            except FreqtuiError as exc:
                if stopped:
                    self._after_stop(old, stopped[0])
                self.notify(str(exc), title="cannot resume", severity="error", timeout=10)
                return
            self._after_stop(old, stopped[0])
            self.training = new
            self.failure, self.exit_code, self._stats = None, 0, None
            await self.main.recompose()
            self.main.set_focus(None)  # focus may still name a widget the recompose removed
            self._bind()
            self._show_past()
        finally:
            self._swapping = False
        self.log_line(f"resumed session {new.run_id} from {info.path}", "bold")
        if self.stop_signal is None:  # a stop under way saves the run it found
            new.start()

    async def action_quit(self) -> None:
        if self.quitting or self._swapping or self.stop_signal is not None:
            return  # already stopping (q, a stop signal) or switching sessions: no second save
        self.quitting = True
        await self.stop_and_save("quit")
        self.exit_message = self.farewell(stuck=self.training.alive)
        self.exit(self.exit_code)

    async def action_help_quit(self) -> None:
        """Ctrl-C (Textual's own binding: the terminal is raw, so the key sends no SIGINT):
        stop and save as SIGINT does, and exit 130 (128 + SIGINT), as headless does."""
        if self.quitting:  # q is saving already
            return
        if self.stop_signals is not None:  # run_app's stop thread saves, says how to resume
            self.stop_signals.trigger(signal.SIGINT)
            return
        self.exit_code = exit_code(signal.SIGINT)
        await self.action_quit()

    def farewell(self, stuck: bool = False) -> str:
        """The session and the exact command that resumes it. `stuck`: the worker did not
        stop and holds the run's lock in a step; it has not finished, and the view (taken
        between two chunks) would wait for it."""
        run = self.training
        if stuck:
            finished, epochs = False, run.config.epochs
        else:
            view = run.view()
            finished, epochs = view.finished, view.planned_epochs
        return exit_message(
            run.run_id,
            run.sessions_root,
            saved=(run.sessions_root / run.run_id / LATEST).exists(),
            finished=finished,
            epochs=epochs,
            save_failed=run.save_error is not None,  # never "finished" over a lost save
        )

    @work(thread=True, exclusive=True, group="past-outputs")
    def _redraw_past_outputs(self, run: TrainingRun) -> None:
        # one evaluation of the saved weights, shown by the table and the plots alike
        record, outputs = run.frozen_evaluation()
        view = run.view()
        label = "saved weights " + stamp(
            *position(view.epoch, view.row, view.planned_epochs, view.rows_per_epoch)
        )
        if run is self.training:
            self.call_from_thread(self._show_saved_weights, record, outputs, label)

    def _show_saved_weights(self, record: ev.EvalRecord, outputs: np.ndarray, label: str) -> None:
        # the plots draw it once their worker has its diagnostics (off this thread)
        if self.plots_panel.set_past_outputs(outputs, record, label):
            self.loss_panel.show_eval(record, label)  # unless a new evaluation came first

    async def stop_and_save(self, reason: str, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the worker, then save its final state unless it failed, trained nothing,
        or the engine already saved exactly this state when it stopped: in a thread (the
        join and the torch.save with its fsync), then its events shown here."""
        run = self.training
        error = await in_thread("freqtui-stop", stop_and_save, run, reason, timeout)
        self._after_stop(run, error)

    def _after_stop(self, run: TrainingRun, error: str | None) -> None:
        """On the UI thread, after shutdown.stop_and_save: the stopped run's last events,
        and why it was not saved."""
        self.handle_events(run.drain(), force=True)
        if run.alive:  # busy in a step it cannot leave (compiling kernels, state check)
            self.log_line("the trainer did not stop in time: no snapshot saved", "yellow")
        elif error is not None:
            self.notify(error, title="not saved", severity="error")

    def stop_run(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self.training.alive:
            self.training.stop(timeout=timeout)

    def on_unmount(self) -> None:
        # however the app ends, the worker ends with it (q has waited for it already)
        self.stop_run(0.1 if self.quitting else STOP_TIMEOUT_S)


_ending = threading.Lock()


def run_app(run: TrainingRun) -> NoReturn:
    """`freqtui` without a subcommand: open the console on a new or resumed run (the CLI
    builds it, with its sessions folder and autosave)."""
    run.claim()  # own the session and prove its folder writable, before the console opens
    app = FreqtuiApp(run=run)
    # plain signal handlers, not the event loop's: they run on the main thread even while
    # it is blocked in a write to a terminal that is gone
    with StopSignals() as stop:
        app.stop_signals = stop
        on_terminal_gone(stop)
        threading.Thread(target=app.watch_stop, args=(stop,), daemon=True, name="stop").start()
        try:
            code = int(app.run() or 0)
        except OSError:  # the terminal is gone
            stop.trigger(signal.SIGHUP)
            code = 0
        finally:
            stop.claim()  # closing Textual's loop reset any it had taken
        if stop.event.is_set():
            app.stopped.wait(STOP_WAIT_S)  # the stop thread's save
            app.stop_signal = stop.signum
        elif app.quitting:
            app.stop_run(timeout=0.1)  # q stopped it already; a busy worker dies here
        else:  # ended without q: its browser tab went away (serve asks the app to quit)
            stop_and_save(app.training, "quit")
    finish(app, code)


def finish(app: FreqtuiApp, code: int) -> NoReturn:
    """The last lines, then the end of the process (from the main thread, or from the stop
    thread when the main thread is stuck: whichever comes first)."""
    with _ending:
        run = app.training  # `o` may have swapped in another session
        err = sys.__stderr__  # not Textual's capture, should the app still be running
        if app.stop_signal is not None:
            say(
                *stop_lines(run, app.stop_signal, console=True),
                *save_failure_lines(run),
                stream=err,
            )
            code = exit_code(app.stop_signal)
        else:
            with contextlib.suppress(OSError):
                print(app.exit_message or app.farewell())
            if save_failure_lines(run):
                say(*save_failure_lines(run), stream=err)
                code = code or 1
        # The worker is joined, the snapshot fsynced and the terminal restored. Python's own
        # teardown of torch and numba takes 1.5-3 s more on a loaded machine, which would
        # make `q` feel slow, so the process ends here.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            err.flush()
        os._exit(code)
