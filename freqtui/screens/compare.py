"""The comparison screen (`c` in the session browser): the marked sessions' frozen MSE
histories overlaid against rows trained on a log scale, one colour each, and the table of
their latest frozen MSE per frequency, the best in each column marked."""

from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual_plotext import PlotextPlot

from engine.compare import SessionHistory, compare_table, load_history
from engine.errors import FreqtuiError
from freqtui.compare import BEST, fmt_mse

COLOURS = ("cyan", "red", "green", "yellow", "magenta", "blue", "orange", "white")


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick positions (log10) for a log axis spanning [lo, hi]: the decades, and 2 and 5
    times them when fewer than three decades are in view."""
    first, last = math.floor(lo), math.ceil(hi)
    steps = (1,) if last - first >= 3 else (1, 2, 5)
    ticks = [d + math.log10(m) for d in range(first, last + 1) for m in steps]
    inside = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
    return inside if len(inside) >= 2 else [first, last] if first != last else [lo]


class CompareScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("c", "close", "close", show=False),
        Binding("t", "toggle_set", "train/test"),
    ]
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > Vertical {
        width: 98%; height: 95%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    CompareScreen PlotextPlot { height: 1fr; min-height: 8; }
    CompareScreen DataTable { height: auto; max-height: 12; }
    CompareScreen Label { width: 1fr; color: $text-muted; }
    """

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = list(paths)
        self.histories: list[SessionHistory] = []
        self.errors: list[str] = []
        for path in self.paths:
            try:
                self.histories.append(load_history(path))
            except FreqtuiError as exc:
                self.errors.append(str(exc))
        self.show_set = "test"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                "frozen MSE (weights fixed) against rows trained, log scale; t: train/test, "
                "escape closes",
                id="compare-help",
            )
            yield PlotextPlot(id="compare-plot")
            yield DataTable(
                id="compare-table", cursor_type="none", zebra_stripes=True, header_height=2
            )

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = f"compare {len(self.histories)} sessions"
        for message in self.errors:
            self.notify(message, title="not compared", severity="error", timeout=10)
        self._fill_table()
        self._draw()

    def _fill_table(self) -> None:
        table = self.query_one(DataTable)
        if not self.histories:
            return
        data = compare_table(self.histories)
        table.add_column("id")
        table.add_column("method")
        for label, name in data.columns:
            table.add_column(f"{label}\n{name}")  # two header rows keep the columns narrow
        for r, h in enumerate(data.sessions):
            cells: list[Text | str] = [Text(h.id, style=COLOURS[r % len(COLOURS)]), h.method]
            for c, v in enumerate(data.values[r]):
                best = data.best[c] == r
                cells.append(
                    Text(fmt_mse(v) + (BEST if best else ""), style="bold" if best else "")
                )
            table.add_row(*cells)

    def _draw(self) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.xlabel("rows trained")
        plt.title(f"frozen MSE {self.show_set} (log scale)")
        # log10 drawn on a linear axis with decade labels: plotext's own log scale fails
        # on a series of one point
        logs: list[float] = []
        for r, h in enumerate(self.histories):
            ys = h.test if self.show_set == "test" else h.train
            points = [(x, y) for x, y in zip(h.rows, ys, strict=True) if y > 0 and math.isfinite(y)]
            if points:
                xs, vs = zip(*points, strict=True)
                logs += [math.log10(v) for v in vs]
                plt.plot(
                    list(xs),
                    [math.log10(v) for v in vs],
                    marker="braille",
                    color=COLOURS[r % len(COLOURS)],
                    label=f"{h.id} {h.method}",
                )
        if logs:
            ticks = log_ticks(min(logs), max(logs))
            plt.yticks(ticks, [f"{10**t:.2g}" for t in ticks])
        plot.refresh()

    def action_toggle_set(self) -> None:
        self.show_set = "train" if self.show_set == "test" else "test"
        self._draw()

    def action_close(self) -> None:
        self.dismiss(None)
