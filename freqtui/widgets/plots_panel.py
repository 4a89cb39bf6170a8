"""Plots (plotext), one tab a view, each view a widget of its own:

- frozen eval (frozen_view.py): the four frequencies, target against model output, from
  the latest frozen evaluation on the test set (its first WINDOW_S seconds);
- oscillator (oscillator_view.py): the oscillator's own diagnostics over the whole test
  block, per frequency;
- MSE history (history_view.py): online loss and every frozen MSE against rows trained;
- live rows (live_view.py): the newest rows being trained;
- Graph 1 (graph1_view.py): f2's target line, output dots, S as a faint background.

The panel owns what the frozen views draw: the test window and, for each frozen
evaluation, its outputs and oscillator diagnostics. Both are computed in a worker thread
(the run's `test_signal` and `diagnostics`), never on the UI thread, and come back as a
`Pictured` message. A plot is rebuilt only when its data changed: the frozen views on a
new evaluation (at most every FROZEN_EVERY_S), the live view at most LIVE_HZ times a
second and only while it is shown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import TabbedContent, TabPane
from textual.worker import get_current_worker

from engine.events import EvalRecord
from engine.run import OscillatorDiagnostics, TrainingRun
from freqtui import messages
from freqtui.text import stamp
from freqtui.widgets.frozen_view import FrozenView
from freqtui.widgets.graph1_view import Graph1View
from freqtui.widgets.history_view import HistoryView
from freqtui.widgets.live_view import LiveView
from freqtui.widgets.oscillator_view import OscillatorView
from freqtui.widgets.plotting import WINDOW_S, FrozenPicture, TestWindow

# frozen evaluations can come every second (fused backend: ~1 s epochs); each redraw of
# the frozen plots costs the UI thread ~0.1 s, so the newest is drawn at this pace
FROZEN_EVERY_S = 5.0
PLOT_TABS = ("tab-freq", "tab-osc", "tab-history", "tab-live", "tab-graph1")
OSC_ALL_ROWS = 30  # below this panel height the oscillator tab shows one diagnostic at a time


@dataclass(frozen=True)
class Evaluated:
    """One frozen evaluation's outputs (F, N) and the weights they are from."""

    outputs: np.ndarray
    record: EvalRecord
    label: str


class PlotsPanel(Vertical):
    DEFAULT_CSS = """
    PlotsPanel TabbedContent { height: 1fr; }
    PlotsPanel TabPane { padding: 0; height: 1fr; }
    PlotsPanel .legend { height: 1; padding: 0 1; color: $text-muted; }
    """

    class Pictured(Message, bubble=False):
        """The worker's answer: the test window, and the picture of an evaluation."""

        def __init__(self, asked: int, window: TestWindow, picture: FrozenPicture | None):
            super().__init__()
            self.asked = asked  # the request it answers (a newer one wins)
            self.window = window
            self.picture = picture

    def __init__(self, run: TrainingRun, rows_per_epoch: int | None = None, **kw) -> None:
        super().__init__(**kw)
        self.run = run
        self.config = run.config
        self.rows_per_epoch = rows_per_epoch  # to stamp an epoch's end as its last row
        self.window: TestWindow | None = None
        self.picture: FrozenPicture | None = None  # the frozen evaluation the views show
        self.asked = 0  # requests made to the worker; > 0 once an evaluation came
        self._shown_request = -1
        self._frozen_dirty = False
        self._frozen_drawn_at = -math.inf

    def compose(self) -> ComposeResult:
        cfg = self.config
        with TabbedContent(id="plot-tabs"):
            with TabPane("frozen", id="tab-freq"):
                yield FrozenView(cfg)
            with TabPane("oscillator", id="tab-osc"):
                yield OscillatorView(cfg)
            with TabPane("history", id="tab-history"):
                yield HistoryView(cfg, self.rows_per_epoch)
            with TabPane("live", id="tab-live"):
                yield LiveView(cfg)
            with TabPane("Graph 1", id="tab-graph1"):
                yield Graph1View(cfg)

    def on_mount(self) -> None:
        self.border_title = "plots"
        self.frozen, self.graph1 = self.query_one(FrozenView), self.query_one(Graph1View)
        self.osc, self.history = self.query_one(OscillatorView), self.query_one(HistoryView)
        self.live = self.query_one(LiveView)
        self.osc.show(self.compact)
        self._draw_frozen()
        self.history.draw()
        self.live.draw()
        self.set_interval(FROZEN_EVERY_S, self._maybe_draw_frozen)
        self._picture(0, None)  # the test window, for the targets

    # ---- data in -----------------------------------------------------------------------
    def on_run_eval_done(self, message: messages.EvalDone) -> None:
        e = message.event
        if e.test_outputs is None:
            return
        r = e.record
        label = stamp(r.epoch, r.row, self.rows_per_epoch)
        self.asked += 1
        self._picture(self.asked, Evaluated(np.asarray(e.test_outputs), r, label))

    def set_past_outputs(self, outputs: np.ndarray, record: EvalRecord, label: str) -> bool:
        """A resumed run's saved weights, evaluated frozen when it opened (the loss table
        shows the same evaluation, `record`), until a new evaluation comes. False when one
        came first."""
        if self.asked:
            return False
        self.asked += 1
        self._picture(self.asked, Evaluated(np.asarray(outputs), record, label))
        return True

    def load_history(
        self, online: Iterable[tuple[int, int, float]], evals: Iterable[EvalRecord]
    ) -> None:
        """A resumed run's past: the online loss and every frozen MSE, drawn at once."""
        self.history.load(online, evals)

    @work(thread=True, group="plots")
    def _picture(self, asked: int, evaluated: Evaluated | None) -> None:
        """Off the UI thread: the test window, and the oscillator's diagnostics of an
        evaluation's outputs (both numpy work on the whole test block)."""
        test = self.run.test_signal()
        n = min(test.n_samples, max(2, int(WINDOW_S * self.config.fs)))
        window = TestWindow(test.t[:n], test.targets[:, :n], test.S[:n], float(test.t[-1]))
        picture = None
        if evaluated is not None:
            diagnostics: OscillatorDiagnostics = self.run.diagnostics(evaluated.outputs)
            picture = FrozenPicture(
                evaluated.outputs[:, :n], diagnostics, evaluated.record, evaluated.label
            )
        if not get_current_worker().is_cancelled:
            self.post_message(self.Pictured(asked, window, picture))

    def on_plots_panel_pictured(self, message: Pictured) -> None:
        first = self.window is None
        self.window = message.window
        if message.picture is None or message.asked <= self._shown_request:
            if first:  # the targets, at once (the pace below is for evaluations)
                self._draw_frozen()
            return  # else: nothing new, or an older evaluation than the one shown
        self._shown_request = message.asked
        self.picture = p = message.picture
        self.frozen.set_label(p.label)
        self.history.show(p.record, p.label)
        self._frozen_dirty = True
        if time.monotonic() - self._frozen_drawn_at >= FROZEN_EVERY_S:
            self._maybe_draw_frozen()  # else the timer draws the newest one shortly

    def _maybe_draw_frozen(self) -> None:
        self.history.maybe_draw()
        if self._frozen_dirty:
            self._frozen_dirty = False
            self._frozen_drawn_at = time.monotonic()
            self._draw_frozen()

    def _draw_frozen(self) -> None:
        for view in (self.frozen, self.graph1, self.osc):
            view.draw(self.window, self.picture)

    # ---- what the frozen views show (read by the app and the tests) ----------------------
    @property
    def outputs(self) -> np.ndarray | None:
        """(F, n): the shown evaluation's outputs over the test window."""
        return None if self.picture is None else self.picture.outputs

    @property
    def diagnostics(self) -> OscillatorDiagnostics | None:
        return None if self.picture is None else self.picture.diagnostics

    @property
    def shown(self) -> EvalRecord | None:
        return None if self.picture is None else self.picture.record

    @property
    def eval_label(self) -> str:
        """Which weights the frozen plots are from: "e3 r40,000"."""
        return "" if self.picture is None else self.picture.label

    @property
    def per_block(self) -> tuple[float, ...]:
        return () if self.picture is None else tuple(self.picture.record.test.per_block)

    @property
    def evals(self) -> list[EvalRecord]:
        return self.history.evals

    @property
    def redraws(self) -> dict[str, int]:
        return {
            "freq": self.frozen.redraws,
            "live": self.live.redraws,
            "graph1": self.graph1.redraws,
            "osc": self.osc.redraws,
            "history": self.history.redraws,
        }

    # ---- keys ----------------------------------------------------------------------------
    def set_focus_block(self, block: int | None) -> None:
        """Keys 1-4 show one frequency large, 0 all of them."""
        if block is not None and not 0 <= block < self.config.n_blocks:
            return
        self.frozen.apply_focus(block, self.outer_size.height)
        self.query_one("#plot-tabs", TabbedContent).active = "tab-freq"
        # no rebuild: the data did not change, and a plot re-renders itself on resize

    def show_tab(self, tab: str) -> None:
        self.query_one("#plot-tabs", TabbedContent).active = tab

    def next_tab(self) -> None:
        """p: the oscillator's next diagnostic where one fits at a time, else the next tab."""
        tabs = self.query_one("#plot-tabs", TabbedContent)
        if tabs.active == "tab-osc" and self.compact and self.osc.next():
            return
        i = PLOT_TABS.index(tabs.active) if tabs.active in PLOT_TABS else -1
        self.show_tab(PLOT_TABS[(i + 1) % len(PLOT_TABS)])

    @property
    def compact(self) -> bool:
        return self.outer_size.height < OSC_ALL_ROWS

    def on_resize(self) -> None:
        self.frozen.apply_focus(self.frozen.focus_block, self.outer_size.height)
        self.osc.show(self.compact)
        if self.compact != self.osc.drawn_compact:
            self.osc.draw(self.window, self.picture)  # the titles and time axes depend on it
