"""The live tab: the newest rows being trained, target against the online output (before
each update), rebuilt at most LIVE_HZ times a second and only while it is on screen."""

from __future__ import annotations

from collections import deque

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TabbedContent
from textual_plotext import PlotextPlot

from engine.config import RunConfig
from freqtui import messages
from freqtui.widgets.plotting import (
    OUTPUT_MARK,
    OUTPUT_MARKER,
    drawing,
    plot_and_legend,
    segments,
    thin,
    time_axis,
)

LIVE_HZ = 1.0
LIVE_VIEW_ROWS = 400  # rows the view keeps (a chunk sends at most the engine's LIVE_ROWS)
LIVE_POINTS = 200  # the live plot is rebuilt often: fewer points, less UI-thread time


class LiveView(Vertical):
    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.dt = 1.0 / config.fs
        self.live: deque[tuple[float, float, float]] = deque(maxlen=LIVE_VIEW_ROWS)
        self.block = 0
        self.all_blocks = False  # the trainer steps all blocks at once (the clock)
        self.dirty = False
        self.redraws = 0

    def compose(self) -> ComposeResult:
        yield from plot_and_legend(
            "live",
            ("━", "green", "target"),
            (OUTPUT_MARK, "red", "output while training (before each update)"),
        )

    def on_mount(self) -> None:
        self.set_interval(1 / LIVE_HZ, self.maybe_draw)

    def on_run_live_rows(self, message: messages.LiveRows) -> None:
        s = message.event
        n = len(s.live_t)
        if not n:
            return
        t = np.asarray(s.live_t)
        # the rows of one chunk are neighbours only within a block and without a skip; a
        # new chunk continues the view only if it starts where the last one ended
        if self.live and (
            s.block != self.block or abs(t[0] - self.live[-1][0] - self.dt) > self.dt / 2
        ):
            self.live.clear()
        self.block = s.block
        self.all_blocks = s.blocks_together
        for k in range(n):
            self.live.append((float(t[k]), s.live_target[k], s.live_output[k]))
        self.dirty = True

    def maybe_draw(self) -> None:
        # rebuilt only when new rows came in and the live tab is the one on screen
        if not self.dirty:
            return
        tabs = self.query_ancestor(TabbedContent)
        if tabs.active != "tab-live" or not tabs.parent.display or not self.screen.is_active:
            return
        self.draw()

    def draw(self) -> None:
        self.redraws += 1
        self.dirty = False
        plot = self.query_one("#live", PlotextPlot)
        with drawing(plot) as plt:
            if not self.live:
                plt.title("live rows: waiting for the first rows")
                return
            t, target, out = (np.array(v) for v in zip(*self.live, strict=True))
            run = segments(t, self.dt)[-1]  # the newest run of neighbouring rows
            t, target, out = thin(t[run], target[run], out[run], points=LIVE_POINTS)
            plt.scatter(t, out, marker=OUTPUT_MARKER, color="red")
            plt.plot(t, target, marker="braille", color="green")  # over the dots
            b = self.block
            f = self.config.frequencies[b]
            how = "the window end of one block of the batch" if self.all_blocks else "rows in order"
            plt.title(f"live rows: f{b + 1} {f:g} Hz, {how}")
            time_axis(plt, t[0], t[-1] if t[-1] > t[0] else t[0] + self.dt)
