"""The one-line key bar at the bottom: the keys that fit, `? help` and `q quit` always
(the help screen lists every key)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

# (key, what, priority): the lowest priorities give way first on a narrow terminal
KEYS = (
    ("space", "pause", 8),
    ("e", "eval", 7),
    ("p", "plot", 6),
    ("v", "view", 5),
    ("0-4", "focus", 3),
    ("s", "save", 4),
    ("o", "sessions", 2),
    ("?", "help", 10),
    ("q", "quit", 10),
)


class KeyBar(Widget):
    DEFAULT_CSS = "KeyBar { height: 1; background: $panel; }"

    def render(self) -> Text:
        width = self.size.width
        keep = list(KEYS)
        while keep and sum(len(k) + len(w) + 3 for k, w, _ in keep) > width:
            keep.remove(min(keep, key=lambda item: item[2]))
        text = Text()
        for key, what, _ in keep:
            text += Text(f" {key} ", style="bold reverse") + Text(f"{what} ")
        return text
