"""The Graph 1 tab, as the spec draws it: f2's target as a line, the model's output from
the newest frozen evaluation as dots, S as a faint background, on the test set."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual_plotext import PlotextPlot

from engine.config import RunConfig
from freqtui.widgets.plotting import (
    OUTPUT_MARK,
    FrozenPicture,
    TestWindow,
    frozen_block,
    plot_and_legend,
)

LEGEND = (
    ("━", "green", "target"),
    (OUTPUT_MARK, "red", "output, weights fixed"),
    ("•", "grey50", "S"),
    ("", "", "t in s"),
)


class Graph1View(Vertical):
    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.block = min(1, config.n_blocks - 1)  # f2, as the spec draws it
        self.redraws = 0

    def compose(self) -> ComposeResult:
        yield from plot_and_legend("graph1", *LEGEND)

    def draw(self, window: TestWindow | None, picture: FrozenPicture | None) -> None:
        self.redraws += 1
        b = self.block
        name = f"Graph 1: f{b + 1} {self.config.frequencies[b]:g} Hz, test set"
        frozen_block(self.query_one("#graph1", PlotextPlot), window, picture, b, name, graph1=True)
