"""The event log: state check, compiling, evaluations, pauses, snapshots, warnings, errors.

Lines carry the row, not the wall clock, so a screen of it is reproducible."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog


class EventLog(RichLog):
    def __init__(self, **kw) -> None:
        super().__init__(max_lines=1000, wrap=True, min_width=20, markup=False, **kw)
        self.messages: list[str] = []  # plain text of every line, for tests and copy

    def on_mount(self) -> None:
        self.border_title = "events"

    def add(self, message: str, style: str = "") -> None:
        self.messages.append(message)
        self.write(Text(message, style=style))
