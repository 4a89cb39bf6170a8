"""The oscillator tab: the oscillator's own diagnostics over the whole test block (squared
error, phase error and amplitude error over time t, per frequency; engine/evaluation.py),
computed off the UI thread with each frozen evaluation. Where the panel is short, one
diagnostic at a time (p shows the next)."""

from __future__ import annotations

import math

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from engine.config import RunConfig
from freqtui.text import fmt_loss
from freqtui.widgets.plotting import (
    BLOCK_COLORS,
    BLOCK_MARKERS,
    LOG_RATIO,
    FrozenPicture,
    TestWindow,
    block_items,
    legend,
    nice,
    time_axis,
)

# (plot id, title) of each diagnostic, in the order p steps through them
OSC_PLOTS = (
    ("osc-err", "squared error (frozen)"),
    ("osc-phase", "phase error (deg)"),
    ("osc-amp", "amplitude error (target 1)"),
)


class OscillatorView(Vertical):
    DEFAULT_CSS = """
    OscillatorView #osc-plots PlotextPlot { height: 1fr; }
    """

    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.index = 0  # the diagnostic shown when there is room for one only
        self.compact = False  # room for one diagnostic only
        self.drawn_compact = False
        self.redraws = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="osc-plots"):
            for key, _ in OSC_PLOTS:
                yield PlotextPlot(id=key)
        yield Static(
            legend(*block_items(self.config.n_blocks), ("", "", "t in s")), classes="legend"
        )

    def show(self, compact: bool) -> None:
        """All three diagnostics, or (compact) the one at `index`."""
        self.compact = compact
        for k, (key, _) in enumerate(OSC_PLOTS):
            self.query_one(f"#{key}").display = not compact or k == self.index

    def next(self) -> bool:
        """Where one diagnostic fits at a time: show the next one (True), or say there is
        none left (False: the caller moves to the next tab)."""
        if self.index + 1 < len(OSC_PLOTS):
            self.index += 1
            self.show(self.compact)
            return True
        self.index = 0
        self.show(self.compact)
        return False

    def draw(self, window: TestWindow | None, picture: FrozenPicture | None) -> None:
        self.redraws += 1
        self.drawn_compact = self.compact
        d = picture.diagnostics if picture is not None else None
        for k, (key, title) in enumerate(OSC_PLOTS):
            plot = self.query_one(f"#{key}", PlotextPlot)
            plt = plot.plt
            plt.clear_figure()
            of = f"({k + 1}/3, p: next) " if self.compact else ""
            if d is None or window is None:
                plt.title(f"{of}{title}: no frozen eval yet")
                plot.refresh()
                continue
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
                r = min(most, nice(max(least, float(np.nanmax(np.abs(values))))))
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
            plt.title(f"{of}{title}, test set, {picture.label}")
            if self.compact or k == len(OSC_PLOTS) - 1:
                time_axis(plt, 0.0, window.t_end)
            else:  # the plots share the time axis written under the last one
                plt.xlim(0.0, window.t_end)
                plt.xticks([])
            plot.refresh()
