"""Status: method, epoch, row and frequency block, rows/s, elapsed, ETA, and the run state."""

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


class StatusBar(Widget):
    """Two lines at the top of the screen; `state` comes from the run, numbers from StepStats."""

    DEFAULT_CSS = "StatusBar { height: 2; }"

    def __init__(self, config: RunConfig, rows_per_epoch: int, backend: str, **kw) -> None:
        super().__init__(**kw)
        self.config = config
        self.rows_per_epoch = rows_per_epoch
        self.backend = backend  # the path that trains, not only the one asked for
        self.state = "ready"
        self.stats: ev.StepStats | None = None
        self.epoch = 1
        self.row = 0

    def set_position(self, epoch: int, row: int) -> None:
        """Where a run starts (a resumed run is not at row 0)."""
        self.epoch, self.row = epoch, row
        self.refresh()

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.refresh()

    def set_stats(self, stats: ev.StepStats) -> None:
        self.stats = stats
        self.epoch, self.row = stats.epoch, stats.row
        self.refresh()

    def render(self) -> Text:
        cfg, s = self.config, self.stats
        n = cfg.n_samples
        block = min(self.row // n, cfg.n_blocks - 1) if s is None else s.block
        freq = cfg.frequencies[block]
        line1 = Text(f" {self.state.upper()} ", style=STATE_STYLES.get(self.state, "reverse"))
        line1 += Text(
            f"  {cfg.method} ({self.backend})  epoch {self.epoch}/{cfg.epochs}  "
            f"row {self.row:,}/{self.rows_per_epoch:,}  block f{block + 1} = {freq:g} Hz"
        )
        if s is None:
            rate, elapsed, eta = "-", "--:--", "--:--"
        else:
            rate, elapsed, eta = (
                f"{s.rows_per_s:,.0f}",
                fmt_seconds(s.elapsed_s),
                fmt_seconds(s.eta_s),
            )
        tail = f"  {rate} rows/s  elapsed {elapsed}  ETA {eta}"
        width = max(10, self.size.width - len(tail) - 1)
        line2 = Text(" ") + bar(self.row / max(1, self.rows_per_epoch), width, "blue") + Text(tail)
        line1.truncate(self.size.width)
        return line1 + Text("\n") + line2
