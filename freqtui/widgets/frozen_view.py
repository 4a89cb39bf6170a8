"""The frozen tab: each frequency's target against the model's output from the newest
frozen evaluation, over the first seconds of the test set (keys 1-4 show one large)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from engine.config import RunConfig
from freqtui.widgets.plotting import OUTPUT_MARK, FrozenPicture, TestWindow, frozen_block, legend

GRID_ROWS = 20  # below this panel height the frozen tab shows one frequency (keys 1-4)


class FrozenView(Vertical):
    DEFAULT_CSS = """
    FrozenView #freq-grid { grid-size: 2 2; height: 1fr; }
    FrozenView #freq-grid.-focused { grid-size: 1 1; }
    """

    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.focus_block: int | None = None  # None = all four
        self.redraws = 0

    def compose(self) -> ComposeResult:
        with Grid(id="freq-grid"):
            for i in range(self.config.n_blocks):
                yield PlotextPlot(id=f"freq-{i}")
        yield Static(self.legend(""), id="freq-legend", classes="legend")

    @staticmethod
    def legend(label: str) -> Text:
        # which weights every number and curve of the tab is from
        return legend(
            ("━", "green", "target"),
            (OUTPUT_MARK, "red", "output (frozen)"),
            ("", "", label or "t in s"),
        )

    def set_label(self, label: str) -> None:
        self.query_one("#freq-legend", Static).update(self.legend(label))

    def apply_focus(self, block: int | None, panel_height: int) -> None:
        """One frequency large (the focused one; f1 where four would not read), or all."""
        self.focus_block = block
        if block is None and panel_height < GRID_ROWS:
            block = 0
        self.query_one("#freq-grid", Grid).set_class(block is not None, "-focused")
        for i in range(self.config.n_blocks):
            self.query_one(f"#freq-{i}").display = block is None or block == i

    def draw(self, window: TestWindow | None, picture: FrozenPicture | None) -> None:
        self.redraws += 1
        for i, f in enumerate(self.config.frequencies):
            plot = self.query_one(f"#freq-{i}", PlotextPlot)
            frozen_block(plot, window, picture, i, f"f{i + 1} {f:g} Hz")
