"""Loss: the smoothed online loss (weights moving) as sparklines, and every frozen MSE
(weights fixed) with its numbers. The two are labelled apart and never share a line."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from engine.config import RunConfig
from engine.history import EvalRecord

MAX_POINTS = 600  # a trace is thinned (every other point kept) beyond this


class Trace:
    """A bounded series of loss values, thinned like the engine's History."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)
        if len(self.values) > MAX_POINTS:
            self.values = self.values[::2]


class FrozenTable(Widget):
    """One line per frozen evaluation, newest last; as many as fit, per frequency if wide."""

    DEFAULT_CSS = "FrozenTable { height: 1fr; min-height: 2; }"

    def __init__(self, frequencies: tuple[float, ...], **kw) -> None:
        super().__init__(**kw)
        self.frequencies = frequencies
        self.evals: list[EvalRecord] = []

    def set_evals(self, evals: Iterable[EvalRecord]) -> None:
        self.evals = list(evals)
        self.refresh()

    def add(self, entry: EvalRecord) -> None:
        self.evals.append(entry)
        self.refresh()

    def lines(self, width: int) -> list[str]:
        per_f = width >= 34 + 8 * len(self.frequencies)
        head = f"{'at':<14}{'train':>8}{'test':>8}"
        if per_f:
            head += "".join(f"{f'f{i + 1} test':>8}" for i in range(len(self.frequencies)))
        out = [head]
        for e in self.evals:
            line = f"e{e.epoch} r{e.row:<,}".ljust(14)
            line += f"{e.train.overall:8.4f}{e.test.overall:8.4f}"
            if per_f:
                line += "".join(f"{v:8.4f}" for v in e.test.per_block)
            out.append(line)
        return out

    def render(self) -> Text:
        if not self.evals:
            return Text("no frozen evaluation yet: press e, or wait for the epoch end", "dim")
        lines = self.lines(self.size.width)
        keep = max(1, self.size.height - 1)
        text = Text(lines[0], style="bold")
        for line in lines[1:][-keep:]:
            text += Text("\n" + line)
        return text


class Value(Widget):
    """A right-aligned number that repaints in place (a Label would relayout the screen)."""

    DEFAULT_CSS = "Value { width: 8; height: 1; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.text = "-"

    def set(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.refresh()

    def render(self) -> Text:
        return Text(self.text.rjust(self.size.width))


class LossPanel(Vertical):
    DEFAULT_CSS = """
    LossPanel .row { height: 1; }
    LossPanel .name { width: 7; }
    LossPanel Sparkline { width: 1fr; }
    LossPanel .caption { color: $text-muted; text-style: bold; }
    """

    def __init__(self, config: RunConfig, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.overall = Trace()
        self.by_block = [Trace() for _ in config.frequencies]

    def compose(self) -> ComposeResult:
        yield Label("online loss (weights moving), EMA", classes="caption")
        names = ["all"] + [f"f{i + 1} {f:g}Hz" for i, f in enumerate(self.config.frequencies)]
        for i, name in enumerate(names):
            with Horizontal(classes="row"):
                yield Label(name, classes="name")
                yield Sparkline([], id=f"spark-{i}", summary_function=_mean)
                yield Value(id=f"value-{i}")
        yield Label("frozen MSE (weights fixed)", classes="caption")
        yield FrozenTable(self.config.frequencies, id="frozen")

    def on_mount(self) -> None:
        self.border_title = "loss"

    def add_online(self, overall: float, by_block: tuple[float | None, ...]) -> None:
        """One smoothed online-loss reading; a block's trace moves only while it trains."""
        self.overall.add(overall)
        self._show(0, self.overall, overall)
        for b, value in enumerate(by_block[: len(self.by_block)]):
            trace = self.by_block[b]
            if value is not None and (not trace.values or trace.values[-1] != value):
                trace.add(value)
                self._show(b + 1, trace, value)

    def load_history(
        self, online: Iterable[tuple[int, int, float]], evals: Iterable[EvalRecord]
    ) -> None:
        """Redraw a resumed run's past from its History."""
        for _, block, loss in online:
            self.overall.add(loss)
            if 0 <= block < len(self.by_block):
                self.by_block[block].add(loss)
        for i, trace in enumerate([self.overall, *self.by_block]):
            if trace.values:
                self._show(i, trace, trace.values[-1])
        self.query_one(FrozenTable).set_evals(evals)

    def add_eval(self, entry: EvalRecord) -> None:
        self.query_one(FrozenTable).add(entry)

    def _show(self, i: int, trace: Trace, value: float) -> None:
        self.query_one(f"#spark-{i}", Sparkline).data = list(trace.values)
        self.query_one(f"#value-{i}", Value).set(f"{value:.4f}")


def _mean(values) -> float:
    return sum(values) / len(values)
