"""Plots (plotext), one tab each:

- frozen eval: the four frequencies, target against model output, from the latest frozen
  evaluation on the test set (its first WINDOW_S seconds);
- oscillator: the oscillator's own diagnostics over the whole test block: squared error,
  phase error and amplitude error over time t, per frequency (engine.evaluation);
- MSE history: the smoothed online loss (weights moving) and every frozen MSE (weights
  fixed) against rows trained, on one y scale, with the 0.5 of predicting zero;
- live rows: the newest rows being trained (online output, before each update);
- Graph 1 (f2: target line, output dots, S as a faint background).

Legends sit on a line under the plots, never over the data; time is in seconds and row
counts are integer ticks. A plot is rebuilt only when its data changed: the frozen plots on
a new evaluation (at most every FROZEN_EVERY_S), the live plot at most LIVE_HZ times a
second and only while it is shown.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from contextlib import contextmanager

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from engine import events as ev
from engine.config import RunConfig
from engine.evaluation import OscillatorDiagnostics, oscillator_diagnostics
from engine.history import EvalRecord
from engine.signals import test_set
from freqtui.text import fmt_loss, fmt_tick, stamp

LIVE_HZ = 1.0
# frozen evaluations can come every second (fused backend: ~1 s epochs); each redraw of
# the frozen plots costs the UI thread ~0.1 s, so the newest is drawn at this pace
FROZEN_EVERY_S = 5.0
LIVE_ROWS = 400  # rows kept for the live view
WINDOW_S = 2.0  # seconds of the test set drawn (the whole 10 s is too dense for a terminal)
MAX_POINTS = 400  # points per series handed to plotext
LIVE_POINTS = 200  # the live plot is rebuilt often: fewer points, less UI-thread time
BLOCK_COLORS = ("red", "green", "cyan", "yellow", "blue", "magenta")
# each frequency's line has a marker of its own as well as a colour (and the legend shows
# it): told apart on a terminal without colour, or by eyes that do not tell red from green
BLOCK_MARKERS = ("•", "+", "x", "*", "o", "#")
# the model's output in quarter blocks (plotext "hd"), the target a braille line: told
# apart by their glyphs, not only by red and green (S, in Graph 1, is a grey •)
OUTPUT_MARKER, OUTPUT_MARK = "hd", "▚"
LOG_RATIO = 30.0  # the history plot's y axis is logarithmic above this max/min ratio
ZERO_MSE = 0.5
PLOT_TABS = ("tab-freq", "tab-osc", "tab-history", "tab-live", "tab-graph1")
OSC_PLOTS = ("osc-err", "osc-phase", "osc-amp")
GRID_ROWS = 20  # below this panel height the frozen tab shows one frequency (keys 1-4)
OSC_ALL_ROWS = 30  # below this panel height the oscillator tab shows one diagnostic at a time


@contextmanager
def _drawing(plot: PlotextPlot, ylim: tuple[float, float] | None = (-1.5, 1.5)):
    """New data for one plot; plotext builds it when Textual next renders the widget."""
    plt = plot.plt
    plt.clear_figure()
    yield plt
    if ylim is not None:
        plt.ylim(*ylim)  # targets are ±1, outputs may overshoot a little
        plt.yticks([-1, 0, 1], ["-1", "0", "1"])
    plot.refresh()


def _points(plot: PlotextPlot) -> int:
    """Points worth drawing (plotext's cost grows with them): a braille cell holds two dots
    across, and no plot is wider than the terminal, hidden or shown, focused or not."""
    return min(MAX_POINTS, max(100, 2 * plot.app.size.width))


def _thin(*series: np.ndarray, points: int = MAX_POINTS) -> list[list[float]]:
    step = max(1, len(series[0]) // points)
    return [np.asarray(s)[::step].tolist() for s in series]


def time_ticks(t0: float, t1: float, n: int = 5) -> tuple[list[float], list[str]]:
    """Round ticks in seconds over [t0, t1]."""
    span = max(t1 - t0, 1e-9)
    step = _nice(span / max(1, n - 1))
    first = math.ceil(t0 / step) * step
    ticks = [first + k * step for k in range(int((t1 - first) / step + 1e-9) + 1)]
    return ticks, [f"{v:.10g}" for v in (round(x, 6) for x in ticks)]


def row_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], list[str]]:
    """Integer ticks for row counts, labelled short (500k, 1.5M)."""
    span = max(hi - lo, 1.0)
    step = max(1, int(_nice(span / n)))
    first = int(math.ceil(lo / step) * step)
    ticks = list(range(first, int(hi) + 1, step))
    return [float(v) for v in ticks], [fmt_tick(v) for v in ticks]


def _nice(x: float) -> float:
    exp = math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10**exp >= x:
            return m * 10**exp
    return 10 ** (exp + 1)


def segments(t: np.ndarray, dt: float) -> list[slice]:
    """Runs of neighbouring samples (steps of about dt): a line is drawn within a run only."""
    if len(t) == 0:
        return []
    breaks = np.nonzero(np.abs(np.diff(t) - dt) > 0.5 * dt)[0] + 1
    edges = [0, *breaks.tolist(), len(t)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def legend(*items: tuple[str, str, str]) -> Text:
    """A legend line: (mark, colour, label) items."""
    text = Text()
    for mark, color, label in items:
        if text.plain:
            text += Text("   ")
        text += Text(mark, style=f"bold {color}") + Text(f" {label}")
    return text


class PlotsPanel(Vertical):
    DEFAULT_CSS = """
    PlotsPanel TabbedContent { height: 1fr; }
    PlotsPanel TabPane { padding: 0; height: 1fr; }
    PlotsPanel #freq-grid { grid-size: 2 2; height: 1fr; }
    PlotsPanel #freq-grid.-focused { grid-size: 1 1; }
    PlotsPanel .legend { height: 1; padding: 0 1; color: $text-muted; }
    PlotsPanel #osc-plots PlotextPlot { height: 1fr; }
    """

    def __init__(self, config: RunConfig, rows_per_epoch: int | None = None, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.rows_per_epoch = rows_per_epoch  # to stamp an epoch's end as its last row
        test = test_set(config)
        self.test = test
        self.dt = 1.0 / config.fs
        n = min(test.n_samples, max(2, int(WINDOW_S * config.fs)))
        self.t = test.t[:n]
        self.targets = test.targets[:, :n]
        self.S = test.S[:n]
        self.outputs: np.ndarray | None = None  # (F, n) of the latest frozen evaluation
        self.diagnostics: OscillatorDiagnostics | None = None
        self.eval_label = ""  # which weights the frozen plots are from: "e3 r40,000"
        self.shown: EvalRecord | None = None  # the evaluation they show
        self.per_block: tuple[float, ...] = ()
        self.focus_block: int | None = None  # None = all four
        self.graph1_block = min(1, config.n_blocks - 1)  # f2, as the spec draws it
        self.live: deque[tuple[float, float, float]] = deque(maxlen=LIVE_ROWS)
        self.live_block = 0
        self.live_all = False  # the trainer steps all blocks at once (the clock)
        self.online: list[tuple[int, float]] = []  # (rows_total, smoothed online loss)
        self.evals: list[EvalRecord] = []
        self._live_dirty = False
        self._frozen_dirty = False
        self._history_dirty = False
        self._frozen_drawn_at = -math.inf
        self.osc_index = 0  # the diagnostic shown when there is room for one only
        self._osc_drawn_compact = False
        self._history_drawn_width = 0
        self.redraws = {"freq": 0, "live": 0, "graph1": 0, "osc": 0, "history": 0}

    def compose(self) -> ComposeResult:
        blocks = [
            (
                BLOCK_MARKERS[i % len(BLOCK_MARKERS)],
                BLOCK_COLORS[i % len(BLOCK_COLORS)],
                f"f{i + 1}",
            )
            for i in range(self.config.n_blocks)
        ]
        with TabbedContent(id="plot-tabs"):
            with TabPane("frozen", id="tab-freq"):
                with Grid(id="freq-grid"):
                    for i in range(self.config.n_blocks):
                        yield PlotextPlot(id=f"freq-{i}")
                yield Static(self._frozen_legend(), id="freq-legend", classes="legend")
            with TabPane("oscillator", id="tab-osc"):
                with Vertical(id="osc-plots"):
                    yield PlotextPlot(id="osc-err")
                    yield PlotextPlot(id="osc-phase")
                    yield PlotextPlot(id="osc-amp")
                yield Static(
                    legend(*blocks, ("", "", "t in s")),
                    classes="legend",
                )
            # one plot and its legend a tab: (tab, plot id, the legend's items)
            for tab, plot, items in (
                ("history", "history", (
                    ("━", "cyan", "online (moving)"),
                    ("o", "red", "frozen test"),
                    ("x", "green", "frozen train"),
                    ("─", "yellow", "0.5"),
                )),
                ("live", "live", (
                    ("━", "green", "target"),
                    (OUTPUT_MARK, "red", "output while training (before each update)"),
                )),
                ("Graph 1", "graph1", (
                    ("━", "green", "target"),
                    (OUTPUT_MARK, "red", "output, weights fixed"),
                    ("•", "grey50", "S"),
                    ("", "", "t in s"),
                )),
            ):  # fmt: skip
                with TabPane(tab, id=f"tab-{plot}"):
                    yield PlotextPlot(id=plot)
                    yield Static(legend(*items), classes="legend")

    def on_mount(self) -> None:
        self.border_title = "plots"
        self._draw_frozen()
        self._draw_graph1()
        self._draw_osc()
        self._draw_history()
        self._draw_live()
        self._show_osc()
        self.set_interval(1 / LIVE_HZ, self._maybe_draw_live)
        self.set_interval(FROZEN_EVERY_S, self._maybe_draw_frozen)

    # ---- data in ---------------------------------------------------------------------
    def set_eval(self, e: ev.EvalDone) -> None:
        self.evals.append(e.record)
        self._history_dirty = True
        if e.test_outputs is None:
            return
        r = e.record
        self._set_outputs(np.asarray(e.test_outputs), r, stamp(r.epoch, r.row, self.rows_per_epoch))

    def set_past_outputs(self, outputs: np.ndarray, record: EvalRecord, label: str) -> None:
        """A resumed run's saved weights, evaluated frozen when it opened (the loss table
        shows the same evaluation, `record`), until a new evaluation comes."""
        if self.outputs is not None:
            return  # a new evaluation came first
        self._set_outputs(np.asarray(outputs), record, label)
        self._history_dirty = True
        self._maybe_draw_frozen()

    def _set_outputs(self, outputs: np.ndarray, record: EvalRecord, label: str) -> None:
        self.diagnostics = oscillator_diagnostics(outputs, self.test)
        self.outputs = outputs[:, : len(self.t)]
        self.eval_label = label
        self.shown = record
        self.per_block = record.test.per_block
        self.query_one("#freq-legend", Static).update(self._frozen_legend())
        self._frozen_dirty = True
        if time.monotonic() - self._frozen_drawn_at >= FROZEN_EVERY_S:
            self._maybe_draw_frozen()  # else the timer draws the newest one shortly

    def load_history(
        self, online: Iterable[tuple[int, int, float]], evals: Iterable[EvalRecord]
    ) -> None:
        """A resumed run's past: the online loss and every frozen MSE, drawn at once."""
        self.online = [(rows, loss) for rows, _, loss in online]
        self.evals = list(evals)
        self._draw_history()

    def add_online(self, rows_total: int, loss: float) -> None:
        self.online.append((rows_total, loss))
        if len(self.online) > 2 * MAX_POINTS:
            self.online = self.online[::2]
        self._history_dirty = True

    def _maybe_draw_frozen(self) -> None:
        if self._history_dirty:
            self._history_dirty = False
            self._draw_history()
        if self._frozen_dirty:
            self._frozen_dirty = False
            self._frozen_drawn_at = time.monotonic()
            self._draw_frozen()
            self._draw_graph1()
            self._draw_osc()

    def add_live(self, s: ev.StepStats) -> None:
        n = len(s.live_t)
        if not n:
            return
        t = np.asarray(s.live_t)
        # the rows of one chunk are neighbours only within a block and without a skip; a
        # new chunk continues the view only if it starts where the last one ended
        if self.live and (
            s.block != self.live_block or abs(t[0] - self.live[-1][0] - self.dt) > self.dt / 2
        ):
            self.live.clear()
        self.live_block = s.block
        self.live_all = s.blocks_together
        for k in range(n):
            self.live.append((float(t[k]), s.live_target[k], s.live_output[k]))
        self._live_dirty = True

    def set_focus_block(self, block: int | None) -> None:
        """Keys 1-4 show one frequency large, 0 all of them."""
        if block is not None and not 0 <= block < self.config.n_blocks:
            return
        self.focus_block = block
        self._apply_focus()
        self.query_one("#plot-tabs", TabbedContent).active = "tab-freq"
        # no rebuild: the data did not change, and a plot re-renders itself on resize

    def show_tab(self, tab: str) -> None:
        self.query_one("#plot-tabs", TabbedContent).active = tab

    @property
    def compact(self) -> bool:
        return self.outer_size.height < OSC_ALL_ROWS

    def _apply_focus(self) -> None:
        """One frequency large (the focused one; f1 where four would not read), or all."""
        block = self.focus_block
        if block is None and self.outer_size.height < GRID_ROWS:
            block = 0
        self.query_one("#freq-grid", Grid).set_class(block is not None, "-focused")
        for i in range(self.config.n_blocks):
            self.query_one(f"#freq-{i}").display = block is None or block == i

    def on_resize(self) -> None:
        self._apply_focus()
        self._show_osc()
        if self.compact != self._osc_drawn_compact:
            self._draw_osc()  # the titles and time axes depend on it
        if self.size.width != self._history_drawn_width:
            self._history_dirty = True  # its title is fitted to the width

    def _show_osc(self) -> None:
        for k, key in enumerate(OSC_PLOTS):
            self.query_one(f"#{key}").display = not self.compact or k == self.osc_index

    def next_osc(self) -> bool:
        """On the oscillator tab with room for one diagnostic: show the next one (True), or
        say there is none left (False: the caller moves to the next tab)."""
        if self.query_one("#plot-tabs", TabbedContent).active != "tab-osc" or not self.compact:
            return False
        if self.osc_index + 1 < len(OSC_PLOTS):
            self.osc_index += 1
            self._show_osc()
            return True
        self.osc_index = 0
        self._show_osc()
        return False

    # ---- drawing ---------------------------------------------------------------------
    def _frozen_legend(self) -> Text:
        # which weights every number and curve of the tab is from
        return legend(
            ("━", "green", "target"),
            (OUTPUT_MARK, "red", "output (frozen)"),
            ("", "", self.eval_label or "t in s"),
        )

    def _time_axis(self, plt, t0: float, t1: float) -> None:
        ticks, labels = time_ticks(t0, t1)
        plt.xticks(ticks, labels)
        plt.xlim(t0, t1)

    def _draw_frozen(self) -> None:
        self.redraws["freq"] += 1
        for i, f in enumerate(self.config.frequencies):
            plot = self.query_one(f"#freq-{i}", PlotextPlot)
            with _drawing(plot) as plt:
                n = _points(plot)
                t, target = _thin(self.t, self.targets[i], points=n)
                if self.outputs is None:
                    plt.title(f"f{i + 1} {f:g} Hz: no frozen eval yet")
                else:
                    (out,) = _thin(self.outputs[i], points=n)
                    plt.scatter(t, out, marker=OUTPUT_MARKER, color="red")
                    plt.title(f"f{i + 1} {f:g} Hz  test MSE {fmt_loss(self.per_block[i])}")
                plt.plot(t, target, marker="braille", color="green")  # over the dots
                self._time_axis(plt, float(self.t[0]), float(self.t[-1]))

    def _draw_graph1(self) -> None:
        self.redraws["graph1"] += 1
        b = self.graph1_block
        plot = self.query_one("#graph1", PlotextPlot)
        name = f"Graph 1: f{b + 1} {self.config.frequencies[b]:g} Hz, test set"
        with _drawing(plot) as plt:
            n = _points(plot)
            t, S, target = _thin(self.t, self.S, self.targets[b], points=n)
            plt.scatter(t, S, marker="dot", color="gray")
            if self.outputs is not None:
                (out,) = _thin(self.outputs[b], points=n)
                plt.scatter(t, out, marker=OUTPUT_MARKER, color="red")
            plt.plot(t, target, marker="braille", color="green")  # over the dots
            if self.outputs is None:
                plt.title(f"{name}: no frozen eval yet")
            else:
                plt.title(f"{name}, {self.eval_label}, MSE {fmt_loss(self.per_block[b])}")
            self._time_axis(plt, float(self.t[0]), float(self.t[-1]))

    def _draw_osc(self) -> None:
        self.redraws["osc"] += 1
        self._osc_drawn_compact = self.compact
        d = self.diagnostics
        specs = (
            ("osc-err", "squared error (frozen)"),
            ("osc-phase", "phase error (deg)"),
            ("osc-amp", "amplitude error (target 1)"),
        )
        for k, (key, title) in enumerate(specs):
            plot = self.query_one(f"#{key}", PlotextPlot)
            plt = plot.plt
            plt.clear_figure()
            of = f"({k + 1}/3, p: next) " if self.compact else ""
            if d is None:
                plt.title(f"{of}{title}: no frozen eval yet")
            else:
                values = {
                    "osc-err": d.squared_error,
                    "osc-phase": d.phase_error_deg,
                    "osc-amp": d.amplitude_error,
                }[key]
                for i in range(values.shape[0]):
                    plt.plot(
                        d.t[i].tolist(),
                        values[i].tolist(),
                        marker=BLOCK_MARKERS[i % len(BLOCK_MARKERS)],
                        color=BLOCK_COLORS[i % len(BLOCK_COLORS)],
                    )
                if key in ("osc-phase", "osc-amp"):
                    # symmetric about 0, at least ±5 degrees or ±0.05: noise stays small
                    least, most = (5.0, 180.0) if key == "osc-phase" else (0.05, math.inf)
                    r = min(most, _nice(max(least, float(np.nanmax(np.abs(values))))))
                    plt.ylim(-r, r)
                    plt.yticks([-r, 0, r], [f"{-r:g}", "0", f"{r:g}"])
                else:  # squared error: log when it spans decades (plotext: no ylim on log)
                    lo = max(1e-9, float(np.nanmin(values)))
                    hi = max(lo, float(np.nanmax(values)))
                    if hi / lo > LOG_RATIO:
                        plt.yscale("log")
                        decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                        yt = [10.0**j for j in decades if lo <= 10.0**j <= hi]
                        yt = yt or [lo, hi]
                    else:  # linear from 0: a flat error draws flat, not zoomed into noise
                        plt.ylim(0.0, hi * 1.15)
                        yt = [0.0, hi]
                    plt.yticks(yt, [fmt_loss(v) for v in yt])
                plt.title(f"{of}{title}, test set, {self.eval_label}")
                last = self.compact or k == len(specs) - 1
                if last:
                    self._time_axis(plt, 0.0, float(self.test.t[-1]))
                else:  # the plots share the time axis written under the last one
                    plt.xlim(0.0, float(self.test.t[-1]))
                    plt.xticks([])
            plot.refresh()

    def _draw_history(self) -> None:
        self.redraws["history"] += 1
        self._history_drawn_width = self.size.width
        plot = self.query_one("#history", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        values = [v for _, v in self.online if v > 0]
        values += [e.test.overall for e in self.evals] + [e.train.overall for e in self.evals]
        if not values:
            plt.title("online loss and frozen MSE: waiting for the first rows")
            plot.refresh()
            return
        rows = [r for r, _ in self.online] + [e.rows_total for e in self.evals]
        lo, hi = min(values + [ZERO_MSE]), max(values + [ZERO_MSE])
        log = lo > 0 and hi / lo > LOG_RATIO
        if self.online:
            r, v = _thin(
                np.array([p[0] for p in self.online]), np.array([p[1] for p in self.online])
            )
            plt.plot(r, v, marker="braille", color="cyan")
        if self.evals:
            r = [e.rows_total for e in self.evals]
            plt.scatter(r, [e.train.overall for e in self.evals], marker="x", color="green")
            plt.scatter(r, [e.test.overall for e in self.evals], marker="o", color="red")
        plt.hline(ZERO_MSE, "yellow")
        x0, x1 = min(rows), max(rows)
        if x1 <= x0:
            x1 = x0 + 1
        plt.xlim(x0, x1)
        ticks, labels = row_ticks(x0, x1)
        plt.xticks(ticks, labels)
        if log:
            plt.yscale("log")
            decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            yt = [10.0**k for k in decades if lo <= 10.0**k <= hi] + [ZERO_MSE]
            plt.yticks(yt, [fmt_loss(v) for v in yt])
        last, at = self.shown, self.eval_label
        if last is None and self.evals:
            last = self.evals[-1]
            at = stamp(last.epoch, last.row, self.rows_per_epoch)
        tail = f"frozen test {fmt_loss(last.test.overall)} at {at}" if last else ""
        kind = "log" if log else "linear"
        # plotext leaves out a title wider than the plot: the longest that fits, the stamp
        # of the frozen number kept to the last
        titles = [
            f"loss vs rows trained, one {kind} y scale" + (f", {tail}" if tail else ""),
            f"loss vs rows, {kind} y" + (f"; {tail}" if tail else ""),
            tail or f"loss vs rows, {kind} y",
        ]
        # the panel's width (the plot's own is 0 while its tab is hidden)
        room = (self.size.width or self.app.size.width) - 4
        plt.title(next((t for t in titles if len(t) <= room), titles[-1]))
        plot.refresh()

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
        plot = self.query_one("#live", PlotextPlot)
        with _drawing(plot) as plt:
            if not self.live:
                plt.title("live rows: waiting for the first rows")
                return
            t, target, out = (np.array(v) for v in zip(*self.live, strict=True))
            run = segments(t, self.dt)[-1]  # the newest run of neighbouring rows
            t, target, out = _thin(t[run], target[run], out[run], points=LIVE_POINTS)
            plt.scatter(t, out, marker=OUTPUT_MARKER, color="red")
            plt.plot(t, target, marker="braille", color="green")  # over the dots
            b = self.live_block
            f = self.config.frequencies[b]
            how = "the window end of one block of the batch" if self.live_all else "rows in order"
            plt.title(f"live rows: f{b + 1} {f:g} Hz, {how}")
            self._time_axis(plt, t[0], t[-1] if t[-1] > t[0] else t[0] + self.dt)
