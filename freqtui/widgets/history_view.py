"""The MSE history tab: the smoothed online loss (weights moving) and every frozen MSE
(weights fixed) against rows trained, on one y scale, with the 0.5 of predicting zero."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TabbedContent
from textual_plotext import PlotextPlot

from engine.config import RunConfig
from engine.events import EvalRecord
from freqtui import messages
from freqtui.text import fmt_loss, stamp
from freqtui.widgets.loss_panel import ZERO_MSE
from freqtui.widgets.plotting import LOG_RATIO, MAX_POINTS, plot_and_legend, row_ticks, thin


class HistoryView(Vertical):
    def __init__(self, config: RunConfig, rows_per_epoch: int | None = None, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.rows_per_epoch = rows_per_epoch  # to stamp an epoch's end as its last row
        self.online: list[tuple[int, float]] = []  # (rows_total, smoothed online loss)
        self.evals: list[EvalRecord] = []
        self.shown: EvalRecord | None = None  # the evaluation the frozen plots show
        self.label = ""  # and the weights it is from
        self.dirty = False
        self.drawn_width = 0
        self.redraws = 0

    def compose(self) -> ComposeResult:
        yield from plot_and_legend(
            "history",
            ("━", "cyan", "online (moving)"),
            ("o", "red", "frozen test"),
            ("x", "green", "frozen train"),
            ("─", "yellow", f"{ZERO_MSE:g}"),
        )

    # ---- data in -----------------------------------------------------------------------
    def on_run_progress(self, message: messages.Progress) -> None:
        s = message.event
        self.online.append((s.rows_total, s.online_loss))
        if len(self.online) > 2 * MAX_POINTS:
            self.online = self.online[::2]
        self.dirty = True

    def on_run_eval_done(self, message: messages.EvalDone) -> None:
        self.evals.append(message.event.record)
        self.dirty = True

    def load(self, online: Iterable[tuple[int, int, float]], evals: Iterable[EvalRecord]) -> None:
        """A resumed run's past: the online loss and every frozen MSE, drawn at once."""
        self.online = [(rows, loss) for rows, _, loss in online]
        self.evals = list(evals)
        self.draw()

    def show(self, record: EvalRecord, label: str) -> None:
        """The evaluation the frozen plots show now, named in the title."""
        self.shown, self.label = record, label
        self.dirty = True

    # ---- drawing -----------------------------------------------------------------------
    def room(self) -> int:
        """The width the title may take: the panel's (the plot's own is 0 while its tab is
        hidden), or the terminal's before the panel is laid out."""
        return self.query_ancestor(TabbedContent).size.width or self.app.size.width

    def maybe_draw(self) -> None:
        if self.dirty or self.room() != self.drawn_width:  # its title is fitted to the width
            self.draw()

    def draw(self) -> None:
        self.redraws += 1
        self.dirty = False
        self.drawn_width = self.room()
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
            r, v = thin(
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
        last, at = self.shown, self.label
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
        room = self.drawn_width - 4
        plt.title(next((t for t in titles if len(t) <= room), titles[-1]))
        plot.refresh()
