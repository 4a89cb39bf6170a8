"""The main screen: status, the run panel, the loss table, memory and hidden state, event log and plots
of the app's current run. Recomposed when the app swaps in a resumed run. Below
MIN_WIDTH x MIN_HEIGHT it shows only a notice saying the size it needs."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from engine.config import registered_methods
from freqtui.widgets.event_log import EventLog
from freqtui.widgets.hidden_panel import HiddenPanel
from freqtui.widgets.key_bar import KeyBar
from freqtui.widgets.loss_panel import LossPanel
from freqtui.widgets.memory_panel import MemoryPanel
from freqtui.widgets.plots_panel import PlotsPanel
from freqtui.widgets.run_panel import OPEN_AT, RunPanel
from freqtui.widgets.status_bar import StatusBar

MIN_WIDTH, MIN_HEIGHT = 60, 18  # the least the layout holds with no label cut


class MainScreen(Screen):
    def compose(self) -> ComposeResult:
        view = self.app.training.view()
        cfg = view.config
        yield StatusBar(
            cfg,
            view.rows_per_epoch,
            view.backend,
            blocks_together=view.blocks_together,
            schedule=view.schedule,
            id="status",
        )
        yield RunPanel(
            cfg,
            view.backend,
            {
                o.name: o.default
                for m in registered_methods()
                if m.name == cfg.method
                for o in m.options
            },
            view.schedule,
            id="run",
        )
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield LossPanel(cfg, view.rows_per_epoch, id="loss")
                with Horizontal(id="lower"):
                    with Vertical(id="gauges"):
                        yield MemoryPanel(id="memory")
                        yield HiddenPanel(cfg.hidden_size, id="hidden")
                    yield EventLog(id="log")
            yield PlotsPanel(self.app.training, view.rows_per_epoch, id="plots")
        yield KeyBar(id="keys")
        yield Static("", id="too-small")

    def on_mount(self) -> None:
        self.query_one("#gauges").border_title = "memory · hidden state"
        width, height = self.app.size
        # open where there is room for it; one line on a small terminal (r toggles)
        self.query_one(RunPanel).collapsed = width < OPEN_AT[0] or height < OPEN_AT[1]
        self._check_size(width, height)
        self.app.main_ready()

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"terminal too small: need at least {MIN_WIDTH}×{MIN_HEIGHT} "
                f"(now {width}×{height}); q quits"
            )
