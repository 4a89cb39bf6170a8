"""The Graph 1 tab, as the spec draws it: f2's target as a line, the model's output from
the newest frozen evaluation as dots, S as a faint background, on the test set."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from engine.config import RunConfig
from freqtui.text import fmt_loss
from freqtui.widgets.plotting import (
    OUTPUT_MARK,
    OUTPUT_MARKER,
    FrozenPicture,
    TestWindow,
    drawing,
    legend,
    points_for,
    thin,
    time_axis,
)


class Graph1View(Vertical):
    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.block = min(1, config.n_blocks - 1)  # f2, as the spec draws it
        self.redraws = 0

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="graph1")
        yield Static(
            legend(
                ("━", "green", "target"),
                (OUTPUT_MARK, "red", "output, weights fixed"),
                ("•", "grey50", "S"),
                ("", "", "t in s"),
            ),
            classes="legend",
        )

    def draw(self, window: TestWindow | None, picture: FrozenPicture | None) -> None:
        self.redraws += 1
        b = self.block
        plot = self.query_one("#graph1", PlotextPlot)
        name = f"Graph 1: f{b + 1} {self.config.frequencies[b]:g} Hz, test set"
        with drawing(plot) as plt:
            if window is None:
                plt.title(f"{name}: loading…")
                return
            n = points_for(plot)
            t, S, target = thin(window.t, window.S, window.targets[b], points=n)
            plt.scatter(t, S, marker="dot", color="gray")
            if picture is not None:
                (out,) = thin(picture.outputs[b], points=n)
                plt.scatter(t, out, marker=OUTPUT_MARKER, color="red")
            plt.plot(t, target, marker="braille", color="green")  # over the dots
            if picture is None:
                plt.title(f"{name}: no frozen eval yet")
            else:
                mse = fmt_loss(picture.record.test.per_block[b])
                plt.title(f"{name}, {picture.label}, MSE {mse}")
            time_axis(plt, float(window.t[0]), float(window.t[-1]))
