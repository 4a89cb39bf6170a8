"""What the plot views share (freqtui/widgets/*_view.py): their colours and markers, ticks,
thinning, legends, and the data the frozen views draw, computed off the UI thread.

Legends sit on a line under the plots, never over the data; time is in seconds and row
counts are integer ticks."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static
from textual_plotext import PlotextPlot

from freqtui.text import fmt_loss, fmt_tick

if TYPE_CHECKING:
    from engine.events import EvalRecord
    from engine.run import OscillatorDiagnostics

MAX_POINTS = 400  # points per series handed to plotext
BLOCK_COLORS = ("red", "green", "cyan", "yellow", "blue", "magenta")
# each frequency's line has a marker of its own as well as a colour (and the legend shows
# it): told apart on a terminal without colour, or by eyes that do not tell red from green
BLOCK_MARKERS = ("•", "+", "x", "*", "o", "#")
# the model's output in quarter blocks (plotext "hd"), the target a braille line: told
# apart by their glyphs, not only by red and green (S, in Graph 1, is a grey •)
OUTPUT_MARKER, OUTPUT_MARK = "hd", "▚"
LOG_RATIO = 30.0  # a y axis is logarithmic above this max/min ratio
WINDOW_S = 2.0  # seconds of the test set drawn (the whole 10 s is too dense for a terminal)


@dataclass(frozen=True)
class TestWindow:
    """The test set as the frozen views draw it: its first WINDOW_S seconds."""

    t: np.ndarray  # (n,)
    targets: np.ndarray  # (F, n)
    S: np.ndarray  # (n,)
    t_end: float  # the whole test block's last t (the oscillator's time axis)

    __test__ = False  # a data class, not a pytest test (the name would be collected)

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0]) if len(self.t) > 1 else 1.0


@dataclass(frozen=True)
class FrozenPicture:
    """One frozen evaluation as the frozen views draw it."""

    outputs: np.ndarray  # (F, n): the model's output over the test window
    diagnostics: OscillatorDiagnostics  # over the whole test block
    record: EvalRecord
    label: str  # which weights: "e3 r40,000", "saved weights e1 r4,000"


@contextmanager
def drawing(plot: PlotextPlot, ylim: tuple[float, float] | None = (-1.5, 1.5)):
    """New data for one plot; plotext builds it when Textual next renders the widget."""
    plt = plot.plt
    plt.clear_figure()
    yield plt
    if ylim is not None:
        plt.ylim(*ylim)  # targets are ±1, outputs may overshoot a little
        plt.yticks([-1, 0, 1], ["-1", "0", "1"])
    plot.refresh()


def points_for(plot: PlotextPlot) -> int:
    """Points worth drawing (plotext's cost grows with them): a braille cell holds two dots
    across, and no plot is wider than the terminal, hidden or shown, focused or not."""
    return min(MAX_POINTS, max(100, 2 * plot.app.size.width))


def thin(*series: np.ndarray, points: int = MAX_POINTS) -> list[list[float]]:
    step = max(1, len(series[0]) // points)
    return [np.asarray(s)[::step].tolist() for s in series]


def time_ticks(t0: float, t1: float, n: int = 5) -> tuple[list[float], list[str]]:
    """Round ticks in seconds over [t0, t1]."""
    span = max(t1 - t0, 1e-9)
    step = nice(span / max(1, n - 1))
    first = math.ceil(t0 / step) * step
    ticks = [first + k * step for k in range(int((t1 - first) / step + 1e-9) + 1)]
    return ticks, [f"{v:.10g}" for v in (round(x, 6) for x in ticks)]


def time_axis(plt, t0: float, t1: float) -> None:
    ticks, labels = time_ticks(t0, t1)
    plt.xticks(ticks, labels)
    plt.xlim(t0, t1)


def row_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], list[str]]:
    """Integer ticks for row counts, labelled short (500k, 1.5M)."""
    span = max(hi - lo, 1.0)
    step = max(1, int(nice(span / n)))
    first = int(math.ceil(lo / step) * step)
    ticks = list(range(first, int(hi) + 1, step))
    return [float(v) for v in ticks], [fmt_tick(v) for v in ticks]


def nice(x: float) -> float:
    """The least of 1, 2, 2.5, 5 times a power of ten that is at least x."""
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


def block_items(n_blocks: int) -> list[tuple[str, str, str]]:
    """Each frequency's marker, colour and name, for a legend."""
    return [
        (BLOCK_MARKERS[i % len(BLOCK_MARKERS)], BLOCK_COLORS[i % len(BLOCK_COLORS)], f"f{i + 1}")
        for i in range(n_blocks)
    ]


def plot_and_legend(plot_id: str, *items: tuple[str, str, str]) -> ComposeResult:
    """A view's one plot and its legend line under it."""
    yield PlotextPlot(id=plot_id)
    yield Static(legend(*items), classes="legend")


def frozen_block(
    plot: PlotextPlot,
    window: TestWindow | None,
    picture: FrozenPicture | None,
    b: int,
    name: str,
    graph1: bool = False,
) -> None:
    """Block b on the test window: its target as a line over the frozen output's dots,
    with its time axis and test MSE; Graph 1 draws S under both, faint, and names the
    weights in its title (the frozen tab's legend names them)."""
    with drawing(plot) as plt:
        if window is None:
            plt.title(f"{name}: loading the test set…")
            return
        if picture is None:
            plt.title(f"{name}: no frozen eval yet")
        else:
            mse = fmt_loss(picture.record.test.per_block[b])
            plt.title(
                f"{name}, {picture.label}, MSE {mse}" if graph1 else f"{name}  test MSE {mse}"
            )
        n = points_for(plot)
        t, target, S = thin(window.t, window.targets[b], window.S, points=n)
        if graph1:
            plt.scatter(t, S, marker="dot", color="gray")
        if picture is not None:
            (out,) = thin(picture.outputs[b], points=n)
            plt.scatter(t, out, marker=OUTPUT_MARKER, color="red")
        plt.plot(t, target, marker="braille", color="green")  # over the dots
        time_axis(plt, float(window.t[0]), float(window.t[-1]))
