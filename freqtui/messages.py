"""The run's events as Textual messages, for the widgets that hold their data.

The app drains the run's events on the UI thread (freqtui/app.py) and posts each kind to
every widget of the main screen that has a handler for it (`on_run_eval_done`,
`on_run_progress` …), as Textualize/toolong's widgets handle their own messages: no widget
is named by the app, and a widget that shows a new kind of data only adds a handler.
"""

from __future__ import annotations

from textual.dom import DOMNode
from textual.message import Message

from engine import events as ev


class RunMessage(Message):
    """One engine event, delivered to one widget. Each kind is declared with
    `bubble=False` (no parent sees it) and the namespace "run" (`on_run_…`): Textual
    does not pass these on to subclasses."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


class Progress(RunMessage, bubble=False, namespace="run"):
    """The newest StepStats, at most the app's STATS_HZ a second (the app keeps only the
    newest between two; no `can_replace` here: each one shown is a point of the trends)."""

    event: ev.StepStats


class LiveRows(RunMessage, bubble=False, namespace="run"):
    """Every chunk's StepStats, for its rows: none is skipped (the live view has no gaps)."""

    event: ev.StepStats


class EvalDone(RunMessage, bubble=False, namespace="run"):
    event: ev.EvalDone


class EpochDone(RunMessage, bubble=False, namespace="run"):
    event: ev.EpochDone


class StateCheckDone(RunMessage, bubble=False, namespace="run"):
    event: ev.StateCheckDone


# the message each kind of event that some widget shows travels in (the app's own part of
# an event, the log and the notices, needs none)
FOR_EVENT: dict[type[ev.Event], type[RunMessage]] = {
    ev.EvalDone: EvalDone,
    ev.EpochDone: EpochDone,
    ev.StateCheckDone: StateCheckDone,
}
KINDS: tuple[type[RunMessage], ...] = (Progress, LiveRows, *FOR_EVENT.values())


def listeners(root: DOMNode) -> dict[type[RunMessage], list[DOMNode]]:
    """For each kind of message, the widgets under `root` that handle it."""
    nodes = list(root.walk_children(with_self=False))
    return {
        kind: [node for node in nodes if callable(getattr(node, kind.handler_name, None))]
        for kind in KINDS
    }
