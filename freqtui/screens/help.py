"""Help on `?`: what every key does, and how to read the two losses. Plain lines, short
enough to read whole at 80×24 (it scrolls below that)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from freqtui.widgets.loss_panel import NEAR_ZERO

KEYS = (
    ("space", "pause / resume training (between chunks of rows)"),
    ("e", "frozen evaluation now (weights fixed, train and test sets)"),
    ("1-4  0", "one frequency large in the plots; 0: all four"),
    ("p", "next plot: frozen, oscillator, history, live, Graph 1"),
    ("v", "below 120 columns: switch between the tables and the plots"),
    ("s  x  r", "save now; x: the history as CSV, JSON; r: run panel"),
    ("o", "sessions: Enter resumes, space marks, c compares, d deletes"),
    ("q  ctrl+c", "stop the trainer, save, quit (prints the resume command)"),
    ("?  escape", "close this help"),
)

LOSSES = (
    (
        "online loss (weights moving)",
        "each row's loss just before the weights move on it, "
        "smoothed. It falls even when nothing general is learnt: the weights chase the target.",
    ),
    (
        "frozen MSE (weights fixed)",
        "the model run over the whole train and test sets from a "
        "zero state, no update: the number that judges it. 0.5 is what predicting zero scores "
        f"(the variance of a sine); red in the table means {NEAR_ZERO:g} or more: within a "
        "tenth of that, no real learning.",
    ),
    (
        "oscillator tab",
        "per frequency over time t: the frozen squared error, and the phase "
        "and amplitude of the output against the target's: where a clock drifts or fades.",
    ),
)


def help_text() -> Text:
    text = Text("keys\n", style="bold")
    for key, what in KEYS:
        text += Text(f"  {key:<11}", style="bold cyan") + Text(f"{what}\n")
    text += Text("two losses, never mixed\n", style="bold")
    for name, what in LOSSES:
        text += Text(f"  {name}: ", style="bold") + Text(f"{what}\n")
    return text


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "close"),
        Binding("question_mark", "app.pop_screen", "close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100%; max-width: 96; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "freqtui help"
            yield Static(help_text())
