"""The main screen: status, loss, memory, hidden state, event log and plots of the app's
current run. Recomposed when the app swaps in a resumed run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from freqtui.widgets.event_log import EventLog
from freqtui.widgets.hidden_panel import HiddenPanel
from freqtui.widgets.loss_panel import LossPanel
from freqtui.widgets.memory_panel import MemoryPanel
from freqtui.widgets.plots_panel import PlotsPanel
from freqtui.widgets.status_bar import StatusBar


class MainScreen(Screen):
    def compose(self) -> ComposeResult:
        view = self.app.training.view()
        cfg = view.config
        yield StatusBar(cfg, view.rows_per_epoch, view.backend, id="status")
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
        self.app.main_ready()
