"""How the console and the headless runner word things: durations, the frozen-MSE and
session tables, and one `describe(event)` for every event both of them show."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import events as ev
from engine.config import RunConfig
from engine.evaluation import FrozenEval, FrozenMSE
from engine.sessions import SessionInfo


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    s = int(s)
    return (
        f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )


def eval_table(train: FrozenMSE, test: FrozenMSE, frequencies: tuple[float, ...]) -> str:
    """The frozen-MSE table, labelled as what it is."""
    heads = "".join(f"{f'f={f:g} Hz':>10}" for f in frequencies)
    lines = [f"{'frozen MSE (weights fixed)':28}{'overall':>10}{heads}"]
    for label, m in (("train (seed set 1)", train), ("test  (seed set 2)", test)):
        cells = "".join(f"{v:10.4f}" for v in m.per_block)
        lines.append(f"  {label:26}{m.overall:10.4f}{cells}")
    return "\n".join(lines)


def eval_json(
    path: Path, config: RunConfig, result: FrozenEval, weights: str | None = None
) -> dict[str, Any]:
    """What `eval --json` prints and `report` writes as metrics.json: frozen MSE only."""
    return {
        "path": str(path),
        "kind": "frozen_mse",
        "weights": weights,
        "train": result.train.to_dict(),
        "test": result.test.to_dict(),
        "frequencies": list(config.frequencies),
        "config": config.to_dict(),
    }


def sessions_table(infos: list[SessionInfo]) -> str:
    """The session list; the MSE columns are the last frozen evaluation (weights fixed)."""

    def mse(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    width = max(24, *(len(i.id) for i in infos))
    lines = [
        f"{'id':{width}}  {'method':10} {'epoch':>7} {'row':>15}  "
        f"{'frozen MSE train':>16} {'test':>8}  saved at"
    ]
    for i in infos:
        if i.error:
            lines.append(f"{i.id:{width}}  unreadable: {i.error}")
            continue
        done = " done" if i.finished else ""
        lines.append(
            f"{i.id:{width}}  {i.method:10} {f'{i.epoch}/{i.epochs}':>7} "
            f"{f'{i.row:,}/{i.rows_per_epoch:,}':>15}  {mse(i.frozen_mse_train):>16} "
            f"{mse(i.frozen_mse_test):>8}  {i.saved_at}{done}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Line:
    """One event as a line of text, with the console's style for it."""

    text: str
    style: str = ""


def describe(e: ev.Event) -> Line | None:
    """The one wording of an event; None for the live progress (StepStats), which the
    status bar and the panels show instead."""
    if isinstance(e, ev.StateCheckDone):
        return Line(
            f"state check {'passed' if e.passed else 'FAILED'}: {e.detail}",
            "green" if e.passed else "bold red",
        )
    if isinstance(e, ev.Compiling):
        if e.done:
            how = "loaded from cache" if e.cached else "compiled"
            return Line(f"{e.backend} kernels {how} in {e.seconds:.1f} s")
        return Line(f"compiling the {e.backend} kernels (first run only)...")
    if isinstance(e, ev.EvalStarted):
        return Line(f"frozen evaluation at epoch {e.epoch}, row {e.row:,}...")
    if isinstance(e, ev.EvalDone):
        return Line(
            f"frozen MSE (weights fixed) at epoch {e.epoch}, row {e.row:,}: "
            f"train {e.train.overall:.4f}, test {e.test.overall:.4f}",
            "bold cyan",
        )
    if isinstance(e, ev.EpochDone):
        return Line(f"epoch {e.epoch} done: mean online loss (weights moving) {e.online_loss:.4f}")
    if isinstance(e, ev.Paused):
        return Line(f"paused at row {e.row:,}", "yellow")
    if isinstance(e, ev.Resumed):
        return Line(f"resumed at row {e.row:,}", "green")
    if isinstance(e, ev.SnapshotSaved):
        return Line(f"snapshot saved ({e.reason}): {e.path}", "green")
    if isinstance(e, ev.RunWarning):
        return Line(f"warning: {e.message}", "yellow")
    if isinstance(e, ev.SaveFailed):
        return Line(f"NOT SAVED: {e.message}; training goes on, saves are retried", "bold red")
    if isinstance(e, ev.Finished):
        return Line(
            f"training {'stopped' if e.stopped else 'finished'} after {e.rows_total:,} rows", "bold"
        )
    if isinstance(e, ev.Failed):
        return Line(f"FAILED: {e.message}", "bold red")
    return None
