"""Plots (plotext): the four frequencies, target against model output, from the latest frozen
evaluation on the test set; a live view of the rows being trained; and the spec's Graph 1
(f2: target line, output dots, S as a faint background).

A plot is rebuilt only when its data changed: the frozen plots and Graph 1 on a new
evaluation (at most every FROZEN_EVERY_S), the live plot at most LIVE_HZ times a second and only while it is shown. (A
focus key only changes which plots are displayed; Textual re-renders them at their new
size.)
"""

from __future__ import annotations

import math
import time
from collections import deque
from contextlib import contextmanager

import numpy as np
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import TabbedContent, TabPane
from textual_plotext import PlotextPlot

from engine import events as ev
from engine.config import RunConfig
from engine.signals import test_set

LIVE_HZ = 1.0
# frozen evaluations can come every second (fused backend: ~1 s epochs); each redraw of
# the five frozen plots costs the UI thread ~0.1 s, so the newest is drawn at this pace
FROZEN_EVERY_S = 5.0
LIVE_ROWS = 400  # rows kept for the live view
WINDOW_S = 2.0  # seconds of the test set drawn (the whole 10 s is too dense for a terminal)
MAX_POINTS = 400  # points per series handed to plotext
LIVE_POINTS = 200  # the live plot is rebuilt often: fewer points, less UI-thread time


@contextmanager
def _drawing(plot: PlotextPlot, xlabel: str):
    """New data for one plot; plotext builds it when Textual next renders the widget."""
    plt = plot.plt
    plt.clear_figure()
    yield plt
    plt.ylim(-1.5, 1.5)  # targets are ±1, outputs may overshoot a little
    plt.xlabel(xlabel)
    plot.refresh()


def _points(plot: PlotextPlot) -> int:
    """Points worth drawing (plotext's cost grows with them): a braille cell holds two dots
    across, and no plot is wider than the terminal, hidden or shown, focused or not."""
    return min(MAX_POINTS, max(100, 2 * plot.app.size.width))


def _thin(*series: np.ndarray, points: int = MAX_POINTS) -> list[list[float]]:
    step = max(1, len(series[0]) // points)
    return [s[::step].tolist() for s in series]


class PlotsPanel(Vertical):
    DEFAULT_CSS = """
    PlotsPanel TabbedContent { height: 1fr; }
    PlotsPanel TabPane { padding: 0; height: 1fr; }
    PlotsPanel #freq-grid { grid-size: 2 2; height: 1fr; }
    PlotsPanel #freq-grid.-focused { grid-size: 1 1; }
    """

    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        test = test_set(config)
        n = min(test.n_samples, max(2, int(WINDOW_S * config.fs)))
        self.t = test.t[:n]
        self.targets = test.targets[:, :n]
        self.S = test.S[:n]
        self.outputs: np.ndarray | None = None  # (F, n) of the latest frozen evaluation
        self.eval_label = ""
        self.per_block: tuple[float, ...] = ()
        self.focus_block: int | None = None  # None = all four
        self.graph1_block = min(1, config.n_blocks - 1)  # f2, as the spec draws it
        self.live: deque[tuple[int, float, float]] = deque(maxlen=LIVE_ROWS)
        self._live_dirty = False
        self._frozen_dirty = False
        self._frozen_drawn_at = -math.inf
        self.redraws = {"freq": 0, "live": 0, "graph1": 0}  # rebuild counts, for tests/bench

    def compose(self) -> ComposeResult:
        with TabbedContent(id="plot-tabs"):
            with TabPane("frozen eval (test)", id="tab-freq"), Grid(id="freq-grid"):
                for i in range(self.config.n_blocks):
                    yield PlotextPlot(id=f"freq-{i}")
            with TabPane("live rows", id="tab-live"):
                yield PlotextPlot(id="live")
            with TabPane(f"Graph 1 (f{self.graph1_block + 1})", id="tab-graph1"):
                yield PlotextPlot(id="graph1")

    def on_mount(self) -> None:
        self.border_title = "plots"
        self._draw_frozen()
        self._draw_graph1()
        self._draw_live()
        self.set_interval(1 / LIVE_HZ, self._maybe_draw_live)
        self.set_interval(FROZEN_EVERY_S, self._maybe_draw_frozen)

    # ---- data in ---------------------------------------------------------------------
    def set_eval(self, e: ev.EvalDone) -> None:
        if e.test_outputs is None:
            return
        self.outputs = np.asarray(e.test_outputs)[:, : len(self.t)]
        self.eval_label = f"e{e.epoch} r{e.row:,} MSE test {e.test.overall:.4f}"
        self.per_block = e.test.per_block
        self._frozen_dirty = True
        if time.monotonic() - self._frozen_drawn_at >= FROZEN_EVERY_S:
            self._maybe_draw_frozen()  # else the timer draws the newest one shortly

    def _maybe_draw_frozen(self) -> None:
        if self._frozen_dirty:
            self._frozen_dirty = False
            self._frozen_drawn_at = time.monotonic()
            self._draw_frozen()
            self._draw_graph1()

    def add_live(self, s: ev.StepStats) -> None:
        n = len(s.live_t)
        first = s.rows_total - n
        for k in range(n):
            self.live.append((first + k, s.live_target[k], s.live_output[k]))
        if n:
            self._live_dirty = True

    def set_focus_block(self, block: int | None) -> None:
        """Keys 1-4 show one frequency large, 0 all of them."""
        if block is not None and not 0 <= block < self.config.n_blocks:
            return
        self.focus_block = block
        grid = self.query_one("#freq-grid", Grid)
        grid.set_class(block is not None, "-focused")
        for i in range(self.config.n_blocks):
            self.query_one(f"#freq-{i}").display = block is None or block == i
        self.query_one("#plot-tabs", TabbedContent).active = "tab-freq"
        # no rebuild: the data did not change, and a plot re-renders itself on resize

    def show_tab(self, tab: str) -> None:
        self.query_one("#plot-tabs", TabbedContent).active = tab

    # ---- drawing ---------------------------------------------------------------------
    def _draw_frozen(self) -> None:
        self.redraws["freq"] += 1
        for i, f in enumerate(self.config.frequencies):
            plot = self.query_one(f"#freq-{i}", PlotextPlot)
            with _drawing(plot, "t (s), test set") as plt:
                n = _points(plot)
                t, target = _thin(self.t, self.targets[i], points=n)
                plt.plot(t, target, marker="braille", color="green", label="target")
                if self.outputs is None:
                    plt.title(f"f{i + 1} {f:g} Hz, no eval yet")
                else:
                    (out,) = _thin(self.outputs[i], points=n)
                    plt.plot(t, out, marker="braille", color="red", label="output")
                    plt.title(f"f{i + 1} {f:g} Hz  MSE {self.per_block[i]:.4f}")

    def _draw_graph1(self) -> None:
        self.redraws["graph1"] += 1
        b = self.graph1_block
        plot = self.query_one("#graph1", PlotextPlot)
        name = f"Graph 1: f{b + 1} {self.config.frequencies[b]:g} Hz"
        with _drawing(plot, "t (s), test set") as plt:
            n = _points(plot)
            t, S, target = _thin(self.t, self.S, self.targets[b], points=n)
            plt.scatter(t, S, marker="dot", color="gray", label="S (mixed input)")
            plt.plot(t, target, marker="braille", color="green", label="target")
            if self.outputs is None:
                plt.title(f"{name}, no eval yet")
            else:
                (out,) = _thin(self.outputs[b], points=n)
                plt.scatter(t, out, marker="dot", color="red", label="output")
                plt.title(f"{name}, {self.eval_label}")

    def _maybe_draw_live(self) -> None:
        # rebuilt only when new rows came in and the live tab is the one on screen
        if not self._live_dirty:
            return
        if self.query_one("#plot-tabs", TabbedContent).active != "tab-live":
            return
        if not self.display or not self.screen.is_active:
            return
        self._draw_live()

    def _draw_live(self) -> None:
        self.redraws["live"] += 1
        self._live_dirty = False
        with _drawing(self.query_one("#live", PlotextPlot), "row (all epochs)") as plt:
            if self.live:
                rows, target, out = (np.array(v) for v in zip(*self.live, strict=True))
                rows, target, out = _thin(rows, target, out, points=LIVE_POINTS)
                plt.plot(rows, target, marker="braille", color="green", label="target")
                plt.scatter(rows, out, marker="dot", color="red", label="output (online)")
                plt.title("live rows: output before each update")
            else:
                plt.title("live: waiting for the first rows")
