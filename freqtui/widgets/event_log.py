"""The event log: state check, compiling, evaluations, pauses, snapshots, warnings, errors.

Lines carry the row, not the wall clock, so a screen of it is reproducible. It shows the
newest whole messages that fit, wrapped to its width. A plain repaint, not a scrolling RichLog: a
RichLog write changes its virtual size, which relayouts the whole screen and rebuilds
every plot, a cost the trainer would feel at every epoch end.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.widget import Widget

MAX_MESSAGES = 1000


class EventLog(Widget):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.messages: list[str] = []  # plain text of every line, for tests and copy
        self._styles: list[str] = []
        self._wrapper = Console(width=200, color_system=None)

    def on_mount(self) -> None:
        self.border_title = "events"

    def add(self, message: str, style: str = "") -> None:
        self.messages.append(message)
        self._styles.append(style)
        if len(self.messages) > MAX_MESSAGES:
            del self.messages[0], self._styles[0]
        self.refresh()

    def render(self) -> Text:
        width, height = max(1, self.size.width), max(1, self.size.height)
        lines: list[Text] = []
        # newest first, whole messages only (but the newest, whatever its length)
        for message, style in zip(reversed(self.messages), reversed(self._styles), strict=True):
            wrapped = list(Text(message, style=style).wrap(self._wrapper, width))
            if lines and len(lines) + len(wrapped) > height:
                break
            lines[:0] = wrapped
            if len(lines) >= height:
                break
        return Text("\n").join(lines[-height:])
