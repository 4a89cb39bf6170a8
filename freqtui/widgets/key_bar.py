"""The one-line key bar at the bottom: the keys that fit, `? help` and `q quit` always
(the help screen lists every key)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

# (key, what, priority): the lowest priorities give way first on a narrow terminal
# (at 80 columns every key but `0-4` and `r` fits; the run panel names `r` itself)
KEYS = (
    ("space", "pause", 9),
    ("e", "eval", 8),
    ("p", "plot", 7),
    ("v", "view", 6),
    ("0-4", "focus", 3),
    ("s", "save", 4),
    ("r", "run", 2),
    ("o", "sessions", 5),
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
