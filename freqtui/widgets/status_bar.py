"""Status: the run state, method, epoch, row (rows done in this epoch) and frequency block
(or "all blocks" when every step trains them together), elapsed; then the progress of the
epoch and of the whole run, each named (with bars where they fit), the method's schedule
in the console's words (format.schedule_items), rows/s and the whole run's ETA. Items that
do not fit are left out whole, never cut."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from engine import events as ev
from engine.config import RunConfig
from freqtui import messages
from freqtui.text import fmt_seconds, position, run_fraction, schedule_items
from freqtui.widgets.gauge import bar

STATE_STYLES = {
    "ready": "bold white on grey30",
    "compiling": "bold black on cyan",
    "checking": "bold black on cyan",
    "running": "bold black on green",
    "pausing": "bold black on yellow",
    "paused": "bold black on yellow",
    "evaluating": "bold black on cyan",
    "finished": "bold white on blue",
    "stopped": "bold white on grey30",
    "failed": "bold white on red",
}
BAR_MIN, BAR_MAX = 6, 30  # cells of each progress bar
# the schedule's items on a narrow status line: the stage and what it feeds first
SCHEDULE_PRIORITY = {"phase": 9, "S amplitude": 8, "polish": 8, "horizon": 7, "slide": 7}


def fit(items: list[tuple[float, Text]], width: int, sep: str = "  ") -> Text:
    """The items (priority, text) that fit in `width`, kept whole and in their order:
    taken highest priority first, each one that still fits (a long one left out does not
    keep a shorter, lower one out)."""
    keep: set[int] = set()
    used = 0
    for k in sorted(range(len(items)), key=lambda k: -items[k][0]):
        need = len(items[k][1]) + (len(sep) if keep else 0)
        if used + need <= width:
            keep.add(k)
            used += need
    out = Text()
    for j in sorted(keep):
        if out.plain:
            out += Text(sep)
        out += items[j][1]
    return out


class StatusBar(Widget):
    """Two lines at the top of the screen; `state` comes from the run, numbers from StepStats."""

    DEFAULT_CSS = "StatusBar { height: 2; }"

    def __init__(
        self,
        config: RunConfig,
        rows_per_epoch: int,
        backend: str,
        *,
        blocks_together: bool = False,
        schedule: tuple[tuple[str, str], ...] = (),
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.config = config
        self.rows_per_epoch = rows_per_epoch
        self.backend = backend  # the path that trains, not only the one asked for
        self.blocks_together = blocks_together
        self.schedule = schedule
        self.state = "ready"
        self.stats: ev.StepStats | None = None
        self.epoch = 1
        self.row = 0
        self.epochs = config.epochs  # the run's length as planned (the clock plans its own)

    def set_position(self, epoch: int, row: int, epochs: int | None = None) -> None:
        """Where a run starts (a resumed run is not at row 0), and its planned length."""
        self.epoch, self.row = epoch, row
        if epochs is not None:
            self.epochs = epochs
        self.refresh()

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.refresh()

    def on_run_progress(self, message: messages.Progress) -> None:
        stats = message.event
        self.stats = stats
        self.epoch, self.row, self.epochs = stats.epoch, stats.row, stats.epochs
        self.rows_per_epoch = stats.rows_per_epoch
        self.schedule = stats.schedule
        self.blocks_together = stats.blocks_together
        self.refresh()

    def render(self) -> Text:
        cfg, s = self.config, self.stats
        width = max(20, self.size.width)
        epochs, per_epoch = self.epochs, self.rows_per_epoch
        epoch, row = position(self.epoch, self.row, epochs, per_epoch)
        if self.blocks_together:
            where = "all blocks"
        else:
            n = cfg.n_samples
            block = min(row // n, cfg.n_blocks - 1) if s is None else s.block
            where = f"block f{block + 1} = {cfg.frequencies[block]:g} Hz"
        line1 = fit(
            [
                (9, Text(f" {self.state.upper()} ", style=STATE_STYLES.get(self.state, "reverse"))),
                (3, Text(f"{cfg.method} ({self.backend})")),  # the run panel has it too
                (8, Text(f"epoch {epoch}/{epochs}")),
                (7, Text(f"row {row:,}/{per_epoch:,}")),
                (6, Text(where)),
                (2, Text(f"elapsed {fmt_seconds(s.elapsed_s)}" if s else "elapsed -")),
                (6.5, Text(f"run ETA {fmt_seconds(s.eta_s) if s else '-'}")),
            ],
            width - 1,
        )
        # two progress figures, each named: this epoch's rows, and the whole run's
        epoch_frac = row / max(1, per_epoch)
        run_frac = run_fraction(self.epoch, self.row, epochs, per_epoch)
        progress = [("epoch", epoch_frac), ("run", run_frac)]
        items: list[tuple[int, Text]] = [
            (10, Text(f"{name} {frac:.0%}", style="bold")) for name, frac in progress
        ]
        items += [
            (SCHEDULE_PRIORITY.get(key, 6), Text(words, style="magenta"))
            for (key, _), words in zip(self.schedule, schedule_items(self.schedule), strict=True)
        ]
        items.append((4, Text(f"{s.rows_per_s:,.0f} rows/s" if s else "- rows/s")))
        line2 = fit(items, width - 1)
        room = width - 1 - len(line2) - 2 * (len(progress) + 1)
        if room >= 2 * BAR_MIN:  # bars in what is left, each beside its own figure
            w = min(BAR_MAX, room // 2)
            for (name, frac), color in zip(progress, ("blue", "green"), strict=True):
                label = f"{name} {frac:.0%}"
                line2 = _with_bar(line2, label, bar(frac, w, color))
        return Text(" ") + line1 + Text("\n ") + line2


def _with_bar(line: Text, label: str, gauge: Text) -> Text:
    """`line` with `gauge` put right after the first `label` in it."""
    at = line.plain.find(label)
    if at < 0:
        return line
    cut = at + len(label)
    return line[:cut] + Text(" ") + gauge + line[cut:]
