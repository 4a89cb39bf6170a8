"""Status: method, epoch, row and frequency block (or "all blocks" when every step trains
them together), the method's schedule (horizon, S amplitude, learning rate ...), rows/s,
elapsed, ETA, and the run state. Items that do not fit are left out whole, never cut."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from engine import events as ev
from engine.config import RunConfig
from freqtui.format import fmt_seconds
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


def fit(items: list[tuple[int, Text]], width: int, sep: str = "  ") -> Text:
    """The items (priority, text) that fit in `width`, kept whole and in their order;
    the lowest priorities are dropped first."""
    keep = set(range(len(items)))
    for k in sorted(range(len(items)), key=lambda k: items[k][0]):
        total = sum(len(items[j][1]) for j in keep) + len(sep) * (len(keep) - 1)
        if total <= width:
            break
        keep.discard(k)
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

    def set_stats(self, stats: ev.StepStats) -> None:
        self.stats = stats
        self.epoch, self.row, self.epochs = stats.epoch, stats.row, stats.epochs
        self.schedule = stats.schedule
        self.blocks_together = stats.blocks_together
        self.refresh()

    def render(self) -> Text:
        cfg, s = self.config, self.stats
        width = max(20, self.size.width)
        if self.blocks_together:
            where = "all blocks"
        else:
            n = cfg.n_samples
            block = min(self.row // n, cfg.n_blocks - 1) if s is None else s.block
            where = f"block f{block + 1} = {cfg.frequencies[block]:g} Hz"
        epochs = self.epochs
        line1 = fit(
            [
                (9, Text(f" {self.state.upper()} ", style=STATE_STYLES.get(self.state, "reverse"))),
                (5, Text(f"{cfg.method} ({self.backend})")),
                (8, Text(f"epoch {min(self.epoch, epochs)}/{epochs}")),
                (7, Text(f"row {self.row:,}/{self.rows_per_epoch:,}")),
                (6, Text(where)),
                (2, Text(f"elapsed {fmt_seconds(s.elapsed_s)}" if s else "elapsed -")),
            ],
            width - 1,
        )
        rate = f"{s.rows_per_s:,.0f} rows/s" if s else "- rows/s"
        eta = f"ETA {fmt_seconds(s.eta_s)}" if s else "ETA -"
        items: list[tuple[int, Text]] = [
            (9 - k, Text(f"{k_}: {v}" if k_ == "validation MSE" else f"{k_} {v}", style="magenta"))
            for k, (k_, v) in enumerate(self.schedule)
        ]
        items += [(8, Text(rate)), (7, Text(eta))]
        line2 = fit(items, width - 1)
        room = width - 1 - len(line2) - 2
        if room >= 8:  # the epoch's progress as a bar in what is left
            frac = self.row / max(1, self.rows_per_epoch)
            line2 = bar(frac, room, "blue") + Text("  ") + line2
        return Text(" ") + line1 + Text("\n ") + line2
