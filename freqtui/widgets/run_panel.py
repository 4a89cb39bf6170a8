"""The run panel: the run's settings (method, seed, lr, the epochs cap, the signal's
duration and phase scale, the -O options that differ from the method's defaults, the
backend that trains) and, for a method with one, its schedule now. Always on screen: one
line when collapsed (`r` toggles; it starts collapsed on a short or narrow terminal),
the whole of it when open. It only formats what the run's view gives it."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual.widget import Widget

from engine.config import RunConfig
from freqtui import messages
from freqtui.text import run_settings, schedule_items

SEP = " · "
OPEN_AT = (120, 40)  # at least this many columns and rows: it starts open


class RunPanel(Widget):
    DEFAULT_CSS = """
    RunPanel { height: auto; padding: 0 1; background: $boost; }
    """

    def __init__(
        self,
        config: RunConfig,
        backend: str,
        defaults: dict,
        schedule: tuple[tuple[str, str], ...] = (),
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.settings = run_settings(config, backend, defaults)
        self.short = run_settings(config, backend, defaults, short=True)
        self.schedule = schedule
        self.collapsed = True

    def on_run_progress(self, message: messages.Progress) -> None:
        schedule = message.event.schedule
        if schedule != self.schedule:
            self.schedule = schedule
            self.refresh(layout=not self.collapsed)

    def toggle(self) -> bool:
        """Open or collapse; returns True when it is collapsed now."""
        self.collapsed = not self.collapsed
        self.refresh(layout=True)
        return self.collapsed

    def lines(self, width: int) -> list[Text]:
        if self.collapsed:
            return [self._one_line(width)]
        out = _wrapped("run", self.settings, width)
        if self.schedule:
            out += _wrapped("now", schedule_items(self.schedule, short=False), width)
        tail = "  r: one line"
        if len(out[-1]) + len(tail) <= width:
            out[-1] += Text(tail, style="dim")
        else:
            out.append(Text(tail.strip(), style="dim"))
        return out

    def _one_line(self, width: int) -> Text:
        """Every setting if they fit (with what `r` does, in words or as "(r)"), else as
        many as fit whole and an ellipsis: never a setting cut."""
        whole = SEP.join(self.short)
        for more in ("  r: more", "  (r)"):
            if 4 + len(whole) + len(more) <= width:
                return Text("run ", style="bold") + Text(whole) + Text(more, style="dim")
        more = "  r: more"
        line = Text("run ", style="bold")
        for k, item in enumerate(self.short):
            sep = "" if k == 0 else SEP
            if len(line) + len(sep) + len(item) + 2 + len(more) > width:
                line += Text(" …", style="dim")
                break
            line += Text(sep, style="dim") + Text(item)
        return line + Text(more, style="dim")

    def render(self) -> Text:
        return Text("\n").join(self.lines(max(20, self.size.width)))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.lines(width))


def _wrapped(head: str, items: list[str], width: int) -> list[Text]:
    """`head` then the items, wrapped between items; an item longer than a line is
    wrapped at its spaces, never cut mid-word."""
    style = "magenta" if head == "now" else ""
    indent = len(head) + 1
    lines = [Text(head + " ", style="bold")]
    for item in items:
        line = lines[-1]
        sep = "" if len(line) <= indent else SEP
        if len(line) + len(sep) + len(item) > width and len(line) > indent:
            lines.append(Text(" " * indent))
            line, sep = lines[-1], ""
        parts = textwrap.wrap(item, max(8, width - indent)) or [""]
        lines[-1] = line + Text(sep, style="dim") + Text(parts[0], style=style)
        lines += [Text(" " * indent) + Text(part, style=style) for part in parts[1:]]
    return lines
