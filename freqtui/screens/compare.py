"""The comparison screen (`c` in the session browser): the marked sessions' frozen MSE
histories overlaid against rows trained on a log scale, one colour and one marker each,
and the table of their latest frozen MSE per frequency (train or test, `t` switches both),
with each session's data (set, duration, phase scale, train/test seeds). The best in a
column is marked among sessions on the same data only (engine/store/compare.py).

The files are read (torch.load) in a worker thread: the screen says "loading…" until they
are in."""

from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual_plotext import PlotextPlot

from engine.errors import FreqtuiError
from engine.store.compare import CompareTable, SessionHistory, compare_table, load_history, set_name
from freqtui.text import BEST, fmt_mse
from freqtui.widgets.plotting import row_ticks

# RGB: plotext and Rich name colours differently ("yellow" is orange in one, not the other),
# so the id in the table and its line in the plot take the same numbers
COLOURS = (
    (0, 200, 220),
    (235, 70, 70),
    (90, 200, 90),
    (235, 190, 40),
    (200, 100, 230),
    (90, 140, 255),
    (255, 140, 0),
    (220, 220, 220),
)
MARKERS = ("•", "+", "x", "o", "*", "#", "@", "%")  # with the colour: a session's line
LEGEND_MIN_HEIGHT = 32  # terminal rows from which the plot has room for its legend
HELP = (
    "frozen MSE (weights fixed) against rows trained, log scale · seeds: train/test noise · "
    "t: train/test · esc closes"
)
SCROLLS = "← → scroll the table"
LOADING = "loading…"


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
        width: 100%; height: 95%;
        border: round $accent; background: $surface; padding: 0;
    }
    CompareScreen PlotextPlot { height: 1fr; min-height: 8; }
    CompareScreen DataTable { height: auto; max-height: 12; }
    CompareScreen Label { width: 1fr; color: $text-muted; }
    CompareScreen #compare-ranking { color: $warning; }
    """

    class Loaded(Message, bubble=False):
        """The worker's answer: the histories read, and a line for each file that was not."""

        def __init__(self, histories: list[SessionHistory], errors: list[str]) -> None:
            super().__init__()
            self.histories = histories
            self.errors = errors

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = list(paths)
        self.histories: list[SessionHistory] = []
        self.errors: list[str] = []
        self.show_set = "test"
        self.data: CompareTable | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(HELP, id="compare-help")
            yield Label(LOADING, id="compare-ranking")
            yield PlotextPlot(id="compare-plot")
            yield DataTable(
                id="compare-table", cursor_type="none", zebra_stripes=True, header_height=2
            )

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = f"compare {len(self.paths)} sessions: {LOADING}"
        self._draw()
        # the table's width is known once it has laid its rows out (on its own idle)
        table = self.query_one(DataTable)
        self.watch(table, "virtual_size", lambda _: self._say_if_it_scrolls(), init=False)
        self._load(self.paths)

    @work(thread=True, exclusive=True, group="compare")
    def _load(self, paths: list[Path]) -> None:
        """Off the UI thread: each file read and checked (engine/store/compare.py)."""
        histories: list[SessionHistory] = []
        errors: list[str] = []
        for path in paths:
            try:
                histories.append(load_history(path))
            except FreqtuiError as exc:
                errors.append(str(exc))
        self.post_message(self.Loaded(histories, errors))

    def on_compare_screen_loaded(self, message: Loaded) -> None:
        self.histories, self.errors = message.histories, message.errors
        self.data = compare_table(self.histories) if self.histories else None
        self.loaded = True
        self.query_one(Vertical).border_title = f"compare {len(self.histories)} sessions"
        note = self.data.ranking_note() if self.data else ""
        self.query_one("#compare-ranking", Label).update(note)
        for text in self.errors:
            self.notify(text, title="not compared", severity="error", timeout=10)
        self._fill_table()
        self._draw()

    def _fill_table(self) -> None:
        """The shown set's columns (overall and every frequency): train and test side by
        side would not fit 120 columns."""
        table = self.query_one(DataTable)
        table.clear(columns=True)
        data = self.data
        if data is None:
            return
        table.add_column("set\nline")  # the data set, and the session's marker in the plot
        for name in ("id", "method", "duration", "phase", "seeds"):
            table.add_column(name)
        shown = [c for c, (_, kind) in enumerate(data.columns) if kind == self.show_set]
        for c in shown:
            table.add_column(f"{data.columns[c][0]}\n{self.show_set}")  # two header rows
        for r, h in enumerate(data.sessions):
            k = self.histories.index(h)  # its colour and marker in the plot
            colour = "rgb({},{},{})".format(*COLOURS[k % len(COLOURS)])
            cells: list[Text | str] = [
                Text.assemble(set_name(data.group[r]), " ", (MARKERS[k % len(MARKERS)], colour)),
                Text(h.id, style=colour),
                h.method,
                f"{h.duration:g} s",
                f"{h.phase_scale:g}",
                h.seeds_text,
            ]
            for c in shown:
                best = data.is_best(r, c)
                cells.append(
                    Text(fmt_mse(data.values[r][c]) + (BEST if best else ""), style="bold" * best)
                )
            table.add_row(*cells)
        self.call_after_refresh(self._say_if_it_scrolls)

    def _say_if_it_scrolls(self) -> None:
        table = self.query_one(DataTable)
        wider = table.virtual_size.width > table.scrollable_content_region.width
        self.query_one("#compare-help", Label).update(f"{HELP} · {SCROLLS}" if wider else HELP)

    def _draw(self) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.xlabel("rows trained")
        plt.title(f"frozen MSE {self.show_set} (log scale)" if self.loaded else LOADING)
        # log10 drawn on a linear axis with decade labels: plotext's own log scale fails
        # on a series of one point
        logs: list[float] = []
        rows: list[int] = []
        # on a short terminal the legend would cover the lines: the table's "line" column
        # and its coloured ids say which is which
        legend = self.app.size.height >= LEGEND_MIN_HEIGHT
        for r, h in enumerate(self.histories):
            ys = h.test if self.show_set == "test" else h.train
            points = [(x, y) for x, y in zip(h.rows, ys, strict=True) if y > 0 and math.isfinite(y)]
            if points:
                xs, vs = zip(*points, strict=True)
                logs += [math.log10(v) for v in vs]
                rows += xs
                plt.plot(
                    list(xs),
                    [math.log10(v) for v in vs],
                    marker=MARKERS[r % len(MARKERS)],
                    color=COLOURS[r % len(COLOURS)],
                    label=f"{h.id} {h.method} ({h.data_text})" if legend else None,
                )
        if logs:
            ticks = log_ticks(min(logs), max(logs))
            plt.yticks(ticks, [f"{10**t:.2g}" for t in ticks])
            plt.xticks(*row_ticks(min(rows), max(rows)))  # 2M 4M, as the history plot
        plot.refresh()

    def action_toggle_set(self) -> None:
        self.show_set = "train" if self.show_set == "test" else "test"
        self._fill_table()
        self._draw()

    def action_close(self) -> None:
        self.dismiss(None)
