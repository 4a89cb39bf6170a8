"""Memory: the process RSS as a gauge, its slope per 10,000 rows with the leak warning,
and the result of the hand-off's state check (three lines)."""

from __future__ import annotations

import psutil
from rich.text import Text
from textual.widget import Widget

from engine import events as ev
from freqtui import messages
from freqtui.widgets.gauge import gauge_line


class MemoryPanel(Widget):
    DEFAULT_CSS = "MemoryPanel { height: 3; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.total_mb = psutil.virtual_memory().total / 2**20
        self.rss_mb: float | None = None
        self.slope = 0.0
        self.leak = False
        self.check: ev.StateCheckDone | None = None

    def on_run_progress(self, message: messages.Progress) -> None:
        s = message.event
        old = (self.rss_mb, self.slope, self.leak)
        self.rss_mb, self.slope, self.leak = s.rss_mb, s.rss_slope_mb_per_10k, s.leak_warning
        if _shown(*old) != _shown(self.rss_mb, self.slope, self.leak):
            self.refresh()

    def on_run_state_check_done(self, message: messages.StateCheckDone) -> None:
        self.check = message.event
        self.refresh()

    def render(self) -> Text:
        w = self.size.width
        if self.rss_mb is None:
            text = Text("RSS    -\n")
            text += Text("slope  - MB/10k rows\n")
        else:
            frac = self.rss_mb / self.total_mb
            text = gauge_line(
                "RSS", frac, f"{self.rss_mb:,.0f} MB", w, "red" if self.leak else "green"
            )
            text += Text(f"\nslope  {self.slope:+.1f} MB/10k rows")
            if self.leak:
                text += Text("  LEAK: state detached?\n", style="bold red")
            else:
                text += Text("  no leak\n", style="dim")
        if self.check is None:
            text += Text("state check: pending", style="dim")
        elif self.check.passed:
            text += Text(f"state check ok: {self.check.rows:,} rows", style="green")
        else:
            text += Text(f"state check FAILED: {self.check.detail}", style="bold red")
        return text


def _shown(rss: float | None, slope: float, leak: bool) -> tuple:
    """What the panel prints: a change below this precision needs no repaint."""
    return (None if rss is None else round(rss), round(slope, 1), leak)
