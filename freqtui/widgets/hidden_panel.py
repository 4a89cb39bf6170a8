"""Hidden state, live: ‖h‖ (on its bound √H), ‖c‖ (on the largest seen in this run, the
scale written), the share of saturated units and the mean gates (four lines)."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

from freqtui import messages
from freqtui.widgets.gauge import gauge_line


class HiddenPanel(Widget):
    DEFAULT_CSS = "HiddenPanel { height: 4; }"

    def __init__(self, hidden_size: int, **kw) -> None:
        super().__init__(**kw)
        self.scale = math.sqrt(hidden_size)  # ‖h‖ ≤ √H since |h| ≤ 1
        self.c_peak = 0.0  # ‖c‖ has no bound: its gauge is drawn against the largest seen
        self.values: tuple[float, ...] | None = None

    def on_run_progress(self, message: messages.Progress) -> None:
        s = message.event
        values = (s.h_norm, s.c_norm, s.saturated, s.gate_i, s.gate_f, s.gate_o)
        if math.isfinite(s.c_norm):
            self.c_peak = max(self.c_peak, s.c_norm)
        if self.values is None or any(
            abs(a - b) > 5e-3 for a, b in zip(values, self.values, strict=True)
        ):
            self.values = values
            self.refresh()

    def render(self) -> Text:
        w = self.size.width
        if self.values is None:
            return Text("‖h‖ ‖c‖ saturation gates:\nwaiting for the first rows", style="dim")
        h, c, sat, gi, gf, go = self.values
        peak = max(self.c_peak, 1e-9)
        text = gauge_line("‖h‖", h / self.scale, f"{h:.2f}/{self.scale:.0f}", w, "cyan")
        text += Text("\n") + gauge_line("‖c‖", c / peak, f"{c:.1f}/max {peak:.1f}", w, "cyan")
        text += Text("\n") + gauge_line(
            "sat", sat, f"{sat:.0%}", w, "red" if sat > 0.5 else "yellow"
        )
        text += Text(f"\ngates  i {gi:.2f}  f {gf:.2f}  o {go:.2f}", style="magenta")
        return text
