"""A one-line text gauge shared by the panels (cheap to redraw, no timers, no clock)."""

from __future__ import annotations

import math

from rich.text import Text

BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int, style: str = "green") -> Text:
    """A horizontal bar `width` cells wide, filled to `fraction` (clipped to 0..1)."""
    width = max(1, width)
    if not math.isfinite(fraction):
        return Text("?" * width, style="red")
    eighths = round(min(1.0, max(0.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (BLOCKS[part] if part else "")
    return Text(filled, style=style) + Text("·" * (width - len(filled)), style="dim")


def gauge_line(label: str, fraction: float, value: str, width: int, style: str = "green") -> Text:
    """`label  ████···  value`, fitted to `width` cells."""
    label_w, value_w = 7, max(len(value), 7)
    line = Text(f"{label:<{label_w}}")
    line += bar(fraction, width - label_w - value_w - 1, style)
    line += Text(f" {value:>{value_w}}")
    return line
