"""Hidden state, live: ‖h‖, ‖c‖, the share of saturated units and the mean gates."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

from engine import events as ev
from freqtui.widgets.gauge import gauge_line


class HiddenPanel(Widget):
    DEFAULT_CSS = "HiddenPanel { height: auto; }"

    def __init__(self, hidden_size: int, **kw) -> None:
        super().__init__(**kw)
        self.scale = math.sqrt(hidden_size)  # ‖h‖ ≤ √H since |h| ≤ 1
        self.values: tuple[float, ...] | None = None

    def on_mount(self) -> None:
        self.border_title = "hidden state"

    def set_stats(self, s: ev.StepStats) -> None:
        values = (s.h_norm, s.c_norm, s.saturated, s.gate_i, s.gate_f, s.gate_o)
        if self.values is None or any(
            abs(a - b) > 5e-3 for a, b in zip(values, self.values, strict=True)
        ):
            self.values = values
            self.refresh()

    def get_content_height(self, container, viewport, width: int) -> int:
        return 6

    def render(self) -> Text:
        w = self.size.width
        if self.values is None:
            return Text("‖h‖ ‖c‖ saturation gates:\nwaiting for the first rows", style="dim")
        h, c, sat, gi, gf, go = self.values
        rows = [
            ("‖h‖", h / self.scale, f"{h:.2f}", "cyan"),
            ("‖c‖", c / (2 * self.scale), f"{c:.2f}", "cyan"),
            ("sat", sat, f"{sat:.0%}", "red" if sat > 0.5 else "yellow"),
            ("gate i", gi, f"{gi:.2f}", "magenta"),
            ("gate f", gf, f"{gf:.2f}", "magenta"),
            ("gate o", go, f"{go:.2f}", "magenta"),
        ]
        text = Text()
        for k, (label, frac, value, style) in enumerate(rows):
            if k:
                text += Text("\n")
            text += gauge_line(label, frac, value, w, style)
        return text
