"""Help on `?`: what every key does, and how to read the two losses."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# freqtui: keys

| key | what it does |
| --- | --- |
| space | pause / resume training (between chunks of rows) |
| e | frozen evaluation now (weights fixed, train and test sets) |
| 1 2 3 4 | show one frequency large in the plots, 0 all four |
| p | next plot: frozen eval, live rows, Graph 1 |
| v | on a narrow terminal: switch between the training panels and the plots |
| s | save a session snapshot now |
| o | open the session browser; Enter resumes the chosen session |
| q | stop the trainer cleanly (autosave) and quit |
| ? | this help; escape or ? closes it |

## Two losses, never mixed

- **online loss (weights moving)**: each row's loss measured just before the
  weights are updated on it, smoothed. It falls even when nothing general is
  learnt, because the weights chase the slowly changing target.
- **frozen MSE (weights fixed)**: the model run over the whole train and test sets
  from a zero state, with no update. This is the number that judges the model;
  0.5 is what any model that ignores time scores (the variance of a sine).
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "close"),
        Binding("question_mark", "app.pop_screen", "close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 96; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
