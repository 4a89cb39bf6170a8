"""The console: a Textual app over one TrainingRun.

The trainer runs in the run's worker thread and only emits events. This app drains them
on the UI thread at POLL_HZ, handles every non-replaceable event in order and keeps only
the newest StepStats of each drain, so a flood of progress costs one redraw.
"""

from __future__ import annotations

import argparse
import time

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from engine import events as ev
from engine.config import RunConfig
from engine.run import TrainingRun
from freqtui.screens.help import HelpScreen
from freqtui.widgets.event_log import EventLog
from freqtui.widgets.hidden_panel import HiddenPanel
from freqtui.widgets.loss_panel import LossPanel
from freqtui.widgets.memory_panel import MemoryPanel
from freqtui.widgets.plots_panel import PlotsPanel
from freqtui.widgets.status_bar import StatusBar

POLL_HZ = 10  # event drains per second (the issue allows up to 20)
STATS_HZ = 5  # redraws of the live numbers: each costs CPU the trainer thread wants
STOP_TIMEOUT_S = 2.0
PLOT_TABS = ("tab-freq", "tab-live", "tab-graph1")


class FreqtuiApp(App[int]):
    TITLE = "freqtui"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
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
        self.exit_code = 0

    @property
    def config(self) -> RunConfig:
        return self.training.config

    # ---- layout ----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        cfg = self.config
        yield StatusBar(cfg, self.training.trainer.rows_per_epoch, id="status")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                with Horizontal(id="top"):
                    yield LossPanel(cfg, id="loss")
                    with Vertical(id="gauges"):
                        yield MemoryPanel(id="memory")
                        yield HiddenPanel(cfg.hidden_size, id="hidden")
                yield EventLog(id="log")
            yield PlotsPanel(cfg, id="plots")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show_past()
        if self.autostart and not self.training.alive:
            self.training.start()
        self.set_interval(1 / POLL_HZ, self.poll)

    def _show_past(self) -> None:
        """A resumed run redraws its history; every run says where it starts."""
        run, tr = self.training, self.training.trainer
        self.query_one(StatusBar).set_position(tr.epoch + 1, tr.row)
        h = run.history
        if h.online or h.evals:
            self.query_one(LossPanel).load_history(h.online, h.evals)
        if run.last_eval is not None:
            e = run.last_eval
            last = h.evals[-1] if h.evals else {"epoch": tr.epoch + 1, "row": tr.row}
            self.query_one(PlotsPanel).set_eval(
                ev.EvalDone(
                    last["epoch"], last["row"], h.rows_total, e.train, e.test, 0.0, e.test_outputs
                )
            )
        cfg = self.config
        self.log_line(
            f"{cfg.method} ({cfg.backend}), {cfg.epochs} epoch(s) of "
            f"{tr.rows_per_epoch:,} rows, lr {cfg.lr:g}, phase scale {cfg.phase_scale:g}; "
            f"starting at epoch {tr.epoch + 1}, row {tr.row:,}"
        )

    # ---- events (UI thread only) -----------------------------------------------------
    def poll(self) -> None:
        """Drain the run's events: each non-replaceable one in order, the newest StepStats."""
        self.handle_events(self.training.drain())
        self.query_one(StatusBar).set_state(self.state_name())

    def handle_events(self, events: list[ev.Event], force: bool = False) -> None:
        """Every event in order; the newest StepStats is shown at most STATS_HZ times a
        second (or now, with `force`), a newer one replacing it meanwhile."""
        plots = self.query_one(PlotsPanel)
        for e in events:
            if isinstance(e, ev.StepStats):
                self._stats = e
                plots.add_live(e)  # every chunk's rows, so the live view has no gaps
            else:
                self.handle_event(e)
        latest = self._stats
        now = time.monotonic()
        if latest is not None and (force or now - self._stats_shown_at >= 1 / STATS_HZ):
            self._stats, self._stats_shown_at = None, now
            self.query_one(StatusBar).set_stats(latest)
            self.query_one(LossPanel).add_online(latest.online_loss, latest.online_loss_by_block)
            self.query_one(MemoryPanel).set_stats(latest)
            self.query_one(HiddenPanel).set_stats(latest)

    def handle_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.StateCheckDone):
            self.query_one(MemoryPanel).set_check(e)
            self.log_line(
                f"state check {'passed' if e.passed else 'FAILED'}: {e.detail}",
                "green" if e.passed else "bold red",
            )
        elif isinstance(e, ev.Compiling):
            if e.done:
                how = "loaded from cache" if e.cached else "compiled"
                self.log_line(f"{e.backend} kernels {how} in {e.seconds:.1f} s")
            else:
                self.log_line(f"compiling the {e.backend} kernels (first run only)...")
        elif isinstance(e, ev.EvalStarted):
            self.log_line(f"frozen evaluation at epoch {e.epoch}, row {e.row:,}...")
        elif isinstance(e, ev.EvalDone):
            self.query_one(LossPanel).add_eval(
                {
                    "epoch": e.epoch,
                    "row": e.row,
                    "train": e.train.to_dict(),
                    "test": e.test.to_dict(),
                }
            )
            self.query_one(PlotsPanel).set_eval(e)
            self.log_line(
                f"frozen MSE (weights fixed) at epoch {e.epoch}, row {e.row:,}: "
                f"train {e.train.overall:.4f}, test {e.test.overall:.4f}",
                "bold cyan",
            )
        elif isinstance(e, ev.EpochDone):
            self.log_line(
                f"epoch {e.epoch} done: mean online loss (weights moving) {e.online_loss:.4f}"
            )
        elif isinstance(e, ev.Paused):
            self.log_line(f"paused at row {e.row:,}", "yellow")
        elif isinstance(e, ev.Resumed):
            self.log_line(f"resumed at row {e.row:,}", "green")
        elif isinstance(e, ev.SnapshotSaved):
            self.log_line(f"snapshot saved ({e.reason}): {e.path}", "green")
        elif isinstance(e, ev.Warning):
            self.log_line(f"warning: {e.message}", "yellow")
            self.notify(e.message, severity="warning")
        elif isinstance(e, ev.Finished):
            what = "stopped" if e.stopped else "finished"
            self.log_line(f"training {what} after {e.rows_total:,} rows; q quits", "bold")
        elif isinstance(e, ev.Failed):
            self.failure = e.message
            self.exit_code = 1
            self.log_line(f"FAILED: {e.message}", "bold red")
            self.notify(e.message, title="training failed", severity="error", timeout=10)

    def state_name(self) -> str:
        if self.failure is not None:
            return "failed"
        status = self.training.status
        if self.training.paused and status in ("running", "checking", "evaluating"):
            return "pausing"
        return status

    def log_line(self, message: str, style: str = "") -> None:
        self.query_one(EventLog).add(message, style)

    # ---- keys ------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        if not self.training.alive:
            self.notify("the trainer is not running", severity="warning")
            return
        paused = self.training.toggle_pause()
        self.query_one(StatusBar).set_state(self.state_name())
        self.log_line("pausing after the current chunk..." if paused else "resuming...")

    def action_evaluate(self) -> None:
        if not self.training.alive:
            self.notify("the trainer is not running: nothing to evaluate", severity="warning")
            return
        self.training.request_eval()
        if self.training.paused:
            self.log_line("frozen evaluation requested: it runs when training resumes")

    def action_focus_block(self, block: int) -> None:
        self.screen.add_class("-plots")
        self.query_one(PlotsPanel).set_focus_block(None if block < 0 else block)

    def action_next_plot(self) -> None:
        self.screen.add_class("-plots")
        plots = self.query_one(PlotsPanel)
        tabs = plots.query_one("#plot-tabs")
        i = PLOT_TABS.index(tabs.active) if tabs.active in PLOT_TABS else -1
        plots.show_tab(PLOT_TABS[(i + 1) % len(PLOT_TABS)])

    def action_toggle_view(self) -> None:
        self.screen.toggle_class("-plots")

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self.stop_run()
        self.exit(self.exit_code)

    def stop_run(self) -> None:
        if self.training.alive:
            self.training.stop(timeout=STOP_TIMEOUT_S)

    def on_unmount(self) -> None:
        self.stop_run()  # however the app ends, the worker ends with it


def run_app(args: argparse.Namespace, config: RunConfig) -> int:
    """`freqtui` without a subcommand: open the console on a new or resumed run."""
    resume = getattr(args, "resume", None)
    if resume:
        from engine.sessions import run_from_snapshot

        run = run_from_snapshot(resume, overrides=args)
    else:
        run = TrainingRun(config)
    app = FreqtuiApp(run=run)
    try:
        code = app.run()
    finally:
        app.stop_run()
    return int(code or 0)
