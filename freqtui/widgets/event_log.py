"""The event log: state check, compiling, evaluations, pauses, snapshots, warnings, errors.

Lines carry the row, not the wall clock, so a screen of it is reproducible."""

from __future__ import annotations

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog


class EventLog(RichLog):
    def __init__(self, **kw) -> None:
        super().__init__(max_lines=1000, wrap=True, min_width=20, markup=False, **kw)
        self.messages: list[str] = []  # plain text of every line, for tests and copy

    def on_mount(self) -> None:
        self.border_title = "events"

        self._styles: list[str] = []
        self._wrapped_at = 0

    def add(self, message: str, style: str = "") -> None:
        self.messages.append(message)
        self._styles.append(style)
        self.write(Text(message, style=style))

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        if event.size.width == self._wrapped_at:
            return
        # RichLog wraps a line once, at the width it had then: wrap everything anew
        self._wrapped_at = event.size.width
        self.clear()
        for message, style in zip(self.messages[-1000:], self._styles[-1000:], strict=True):
            self.write(Text(message, style=style))
