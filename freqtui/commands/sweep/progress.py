"""A sweep's progress on the driver's terminal: one line per running cell and a total
line, redrawn by rich on a terminal, printed every few seconds otherwise."""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any

from engine.sweep.state import CellState
from freqtui.text import PLAIN_EVERY_S


class Progress:
    """One line per running cell and a total line: rich on a terminal, plain otherwise."""

    def __init__(self, total: int, states: list[CellState]) -> None:
        self.total = total
        self.states = {s.cell.name: s for s in states}
        self.lines: dict[str, dict[str, Any]] = {}
        self.running: set[str] = set()
        self.started: set[str] = set()  # keys of the stretches a worker has begun
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.start_fraction = self.fraction()
        self.live = None
        self.last_plain = 0.0
        if sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(refresh_per_second=4, transient=True)
            self.live.start()

    def on_event(self, event) -> None:  # Dask calls this on its own thread
        _, msg = event
        with self.lock:
            self.started.add(msg["key"])
            if "epoch" in msg:
                self.lines[msg["cell"]] = msg

    def fraction(self) -> float:
        parts = []
        for name, s in self.states.items():
            msg = self.lines.get(name) if name in self.running else None
            if msg and not s.finished:
                rpe = msg["rows_per_epoch"]
                parts.append(((msg["epoch"] - 1) * rpe + msg["row"]) / max(1, msg["epochs"] * rpe))
            else:
                parts.append(s.done_fraction)
        return sum(parts) / max(1, len(parts))

    def total_line(self) -> str:
        done = sum(1 for s in self.states.values() if s.finished)
        frac = self.fraction()
        gained = frac - self.start_fraction
        elapsed = time.monotonic() - self.t0
        eta = elapsed * (1 - frac) / gained if gained > 1e-9 else math.inf
        return (
            f"cells done {done}/{self.total}  ({100 * frac:.0f}% of the rows)  "
            f"elapsed {fmt_clock(elapsed)}  ETA {fmt_clock(eta)}"
        )

    def cell_lines(self) -> list[str]:
        out = []
        with self.lock:
            for name in sorted(self.running):
                m = self.lines.get(name)
                if m is None:
                    out.append(f"  {name}: starting")
                    continue
                out.append(
                    f"  {name}: epoch {m['epoch']}/{m['epochs']} row {m['row']:,}/"
                    f"{m['rows_per_epoch']:,}  {m['rows_per_s']:,.0f} rows/s  online loss "
                    f"(weights moving) {m['online_loss']:.4f}  cell ETA {fmt_clock(m['eta_s'])}"
                )
        return out

    def say(self, line: str) -> None:
        if self.live is not None:
            self.live.console.print(line)
        else:
            print(line, flush=True)

    def refresh(self) -> None:
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text("\n".join([*self.cell_lines(), self.total_line()])))
        elif time.monotonic() - self.last_plain >= PLAIN_EVERY_S:
            self.last_plain = time.monotonic()
            for line in [*self.cell_lines(), self.total_line()]:
                print(line, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def fmt_clock(s: float) -> str:
    """Seconds as mm:ss, or h:mm:ss from an hour on; --:-- when not known."""
    if not math.isfinite(s):
        return "--:--"
    s = int(s)
    return (
        f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )
