"""Loss: one table per frequency (and overall) that puts side by side the online loss
(weights moving: its trend, its smoothed value now, the mean of the last epoch) and the
frozen MSE (weights fixed) on train and test of one evaluation, stamped under the table with
the weights it is from (epoch and row), with the 0.5 of predicting zero as a row of its own.

The trends are sparklines on one shared scale (logarithmic when the values span more
than a decade and a half), its min and max written under them: a flat series draws flat,
and two lines can be compared with each other and with the frozen numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from rich.text import Text
from textual.widget import Widget

from engine.config import RunConfig
from engine.events import EvalRecord
from freqtui import messages
from freqtui.text import fmt_loss, stamp

MAX_POINTS = 600  # a trace is thinned (every other point kept) beyond this
LEVELS = "▁▂▃▄▅▆▇█"
LOG_RATIO = 30.0  # max/min above this: the shared scale is logarithmic
ZERO_MSE = 0.5  # predicting zero: the variance of a sine
NEAR_ZERO = 0.45  # a frozen MSE at or above this is no better than predicting zero
NAME_W, NUM_W, MIN_SPARK = 8, 8, 6
ROWS = 9  # lines the table takes: 2 headers, overall + 4 frequencies, zero row, scale


class Trace:
    """A bounded series of loss values, thinned like the engine's History."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)
        if len(self.values) > MAX_POINTS:
            self.values = self.values[::2]


class Scale:
    """One scale for every sparkline: linear, or log when the range calls for it."""

    def __init__(self, values: Iterable[float]) -> None:
        finite = [v for v in values if math.isfinite(v)]
        self.lo = min(finite) if finite else 0.0
        self.hi = max(finite) if finite else 0.0
        self.log = self.lo > 0 and self.hi / self.lo > LOG_RATIO

    def _f(self, v: float) -> float:
        return math.log10(max(v, 1e-30)) if self.log else v

    def level(self, v: float) -> int:
        """0..7; a scale with no range puts everything at the middle (flat stays flat)."""
        if not math.isfinite(v):
            return 7
        span = self._f(self.hi) - self._f(self.lo)
        if span <= 0:
            return 3
        x = (self._f(v) - self._f(self.lo)) / span
        return min(7, max(0, round(x * 7)))

    def describe(self, short: bool = False) -> str:
        kind = "log" if self.log else "linear"
        ends = f"{LEVELS[0]} {fmt_loss(self.lo)}  {LEVELS[-1]} {fmt_loss(self.hi)}"
        return f"{ends} {kind}" if short else f"{ends}  ({kind}, shared)"


def resample(values: list[float], width: int) -> list[float]:
    """`width` points over the whole trace, oldest left: the mean of equal slices, or each
    point repeated when there are fewer points than cells."""
    n = len(values)
    if n == 0:
        return []
    if n <= width:
        return [values[k * n // width] for k in range(width)]
    out = []
    for k in range(width):
        a, b = k * n // width, (k + 1) * n // width
        out.append(sum(values[a:b]) / max(1, b - a))
    return out


def sparkline(values: list[float], width: int, scale: Scale) -> Text:
    points = resample(values, width)
    return Text("".join(LEVELS[scale.level(v)] for v in points).ljust(width), style="cyan")


class LossPanel(Widget):
    """The per-frequency table of online loss and frozen MSE (see the module's docstring)."""

    DEFAULT_CSS = f"LossPanel {{ height: {ROWS + 2}; }}"

    def __init__(self, config: RunConfig, rows_per_epoch: int | None = None, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.rows_per_epoch = rows_per_epoch  # to stamp an epoch's end as its last row
        nb = config.n_blocks
        self.overall = Trace()
        self.by_block = [Trace() for _ in range(nb)]
        self.now: list[float | None] = [None] * (nb + 1)  # overall first, then each block
        self.epoch_mean: list[float | None] = [None] * (nb + 1)
        self.epoch_label = ""
        self.evals: list[EvalRecord] = []
        # the evaluation the frozen columns show, and which weights it is from: the newest
        # recorded one, or the saved weights of a resumed run evaluated when it opened
        self.shown: EvalRecord | None = None
        self.shown_label = ""

    def on_mount(self) -> None:
        self.border_title = "loss per frequency"

    # ---- data in -----------------------------------------------------------------------
    def on_run_progress(self, message: messages.Progress) -> None:
        s = message.event
        self.add_online(s.online_loss, s.online_loss_by_block)

    def on_run_epoch_done(self, message: messages.EpochDone) -> None:
        e = message.event
        self.add_epoch(e.epoch, e.online_loss, e.online_loss_by_block)

    def on_run_eval_done(self, message: messages.EvalDone) -> None:
        self.evals.append(message.event.record)
        self.show_eval(message.event.record)

    def add_online(self, overall: float, by_block: tuple[float | None, ...]) -> None:
        """One smoothed online-loss reading; a block's trace moves only while it trains."""
        self.overall.add(overall)
        self.now[0] = overall
        for b, value in enumerate(by_block[: len(self.by_block)]):
            trace = self.by_block[b]
            if value is not None and (not trace.values or trace.values[-1] != value):
                trace.add(value)
                self.now[b + 1] = value
        self.refresh()

    def add_epoch(self, epoch: int, online: float, by_block: tuple[float | None, ...]) -> None:
        self.epoch_mean = [online, *by_block[: len(self.by_block)]]
        self.epoch_mean += [None] * (len(self.by_block) + 1 - len(self.epoch_mean))
        self.epoch_label = f"e{epoch}"
        self.refresh()

    def show_eval(self, entry: EvalRecord, label: str | None = None) -> None:
        """The frozen columns show `entry`, stamped with the weights it is from."""
        self.shown = entry
        self.shown_label = label or stamp(entry.epoch, entry.row, self.rows_per_epoch)
        self.refresh()

    def load_history(
        self,
        online: Iterable[tuple[int, int, float]],
        evals: Iterable[EvalRecord],
        epochs: Iterable[tuple[int, float, tuple[float | None, ...]]] = (),
    ) -> None:
        """Redraw a resumed run's past from its History."""
        for _, block, loss in online:
            self.overall.add(loss)
            self.now[0] = loss
            if 0 <= block < len(self.by_block):
                self.by_block[block].add(loss)
                self.now[block + 1] = loss
        self.evals = list(evals)
        if self.evals:
            self.show_eval(self.evals[-1])
        for epoch, mean, by_block in epochs:
            self.add_epoch(epoch, mean, by_block)
        self.refresh()

    # ---- drawing -----------------------------------------------------------------------
    def scale(self) -> Scale:
        return Scale(v for t in (self.overall, *self.by_block) for v in t.values)

    def lines(self, width: int) -> list[Text]:
        """The table, fitted to `width` cells."""
        cfg = self.config
        spark_w = max(MIN_SPARK, width - NAME_W - 4 * NUM_W)
        last = self.shown
        online_head = "online loss (weights moving)"
        frozen_head = "frozen MSE (weights fixed)"
        left_w = NAME_W + spark_w + 2 * NUM_W
        if left_w + len(frozen_head) + 1 > width:
            frozen_head = "frozen MSE"
        head1 = Text(" " * NAME_W + online_head.ljust(left_w - NAME_W), style="bold")
        head1 += Text("│" + frozen_head.rjust(2 * NUM_W - 1), style="bold")
        at = f"frozen at {self.shown_label}" if last else ""
        head2 = Text(
            " " * NAME_W
            + "trend (EMA)".ljust(spark_w)
            + "now".rjust(NUM_W)
            + self._epoch_head().rjust(NUM_W)
            + "│"
            + "train".rjust(NUM_W - 1)
            + "test".rjust(NUM_W),
            style="bold",
        )
        out = [head1, head2]
        scale = self.scale()
        names = ["all"] + [f"f{i + 1} {f:g}Hz" for i, f in enumerate(cfg.frequencies)]
        traces = [self.overall, *self.by_block]
        for k, (name, trace) in enumerate(zip(names, traces, strict=True)):
            line = Text(name[: NAME_W - 1].ljust(NAME_W))
            line += sparkline(trace.values, spark_w, scale)
            line += Text(fmt_loss(self.now[k]).rjust(NUM_W))
            line += Text(fmt_loss(self.epoch_mean[k]).rjust(NUM_W))
            line += Text("│", style="dim")
            if last is None:
                line += Text("-".rjust(NUM_W - 1) + "-".rjust(NUM_W), style="dim")
            else:
                tr = last.train.overall if k == 0 else last.train.per_block[k - 1]
                te = last.test.overall if k == 0 else last.test.per_block[k - 1]
                line += _frozen(tr, NUM_W - 1) + _frozen(te, NUM_W)
            out.append(line)
        zero = Text("0.5".ljust(NAME_W), style="yellow")
        room = spark_w + 2 * NUM_W
        words = next(
            w
            for w in ("predicting zero (the variance of a sine)", "predicting zero", "zero", "")
            if len(w) <= room
        )
        zero += Text(words.ljust(room), style="yellow")
        zero += Text("│", style="dim") + Text(
            fmt_loss(ZERO_MSE).rjust(NUM_W - 1) + fmt_loss(ZERO_MSE).rjust(NUM_W), style="yellow"
        )
        out.append(zero)
        if any(t.values for t in traces):
            foots = ["scale " + scale.describe(), "scale " + scale.describe(short=True), ""]
        else:
            foots = ["trend: waiting for the first rows", ""]
        # which weights the frozen columns are from comes first; the scale in what is left
        foot = next(f for f in foots if len(f) + len(at) + 1 <= width or not f)
        foot_line = Text(foot.ljust(width - len(at)), style="dim")
        foot_line += Text(at, style="dim")
        out.append(foot_line)
        for line in out:
            line.truncate(width)
        return out

    def render(self) -> Text:
        return Text("\n").join(self.lines(max(20, self.size.width)))

    def _epoch_head(self) -> str:
        """The epoch column's head: which epoch its means are of, in what fits."""
        label = self.epoch_label
        if not label:
            return "epoch"
        return next(h for h in (f"{label} mean", f"{label} avg", label) if len(h) < NUM_W)


def _frozen(v: float, width: int) -> Text:
    """A frozen MSE, red when it is no better than predicting zero."""
    style = "bold red" if v >= NEAR_ZERO else "bold green"
    return Text(fmt_loss(v).rjust(width), style=style)
