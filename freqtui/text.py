"""How the console and the headless runner word things: durations, the frozen-MSE and
session tables, and one `describe(event)` for every event both of them show."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import events as ev
from engine.config import RunConfig
from engine.history import FrozenMSE
from engine.store.sessions import SessionInfo, sessions_dir

PLAIN_EVERY_S = 5.0  # progress without a terminal: a plain line this often (headless, sweep)

if TYPE_CHECKING:
    from engine.evaluation import FrozenEval
    from engine.run import RunView


def fmt_int(n: float) -> str:
    """A count (rows, megabytes) with thousands separators: 18,000,000."""
    return f"{round(n):,}"


def fmt_rows(n: float) -> str:
    """A row count as the one way rows are written everywhere: '18,000,000 rows'."""
    return f"{fmt_int(n)} rows"


def fmt_seconds(s: float) -> str:
    """A duration, its units written: '33 s', '2 min 07 s', '1 h 02 min'; '-' if unknown."""
    if not math.isfinite(s) or s < 0:
        return "-"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s // 60 % 60:02d} min"


def fmt_loss(v: float | None) -> str:
    """A loss or MSE: 4 decimals, or 2 significant digits below 0.001 (never a bare 0.0000)."""
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    if v != 0 and abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4f}"


BEST = "*"  # marks the least frozen MSE in a comparison's column


def fmt_mse(v: float | None) -> str:
    """A frozen MSE in a comparison: 4 decimals, small values 3 significant digits."""
    if v is None:
        return "-"
    return f"{v:.4f}" if v >= 0.1 else f"{v:.3g}"


def fmt_tick(v: float) -> str:
    """An axis tick: an integer count short enough for a tick (400k, 1.5M), else the value."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:.3g}"


def aligned(rows: list[list[str]], right: set[int], gap: int = 2) -> list[str]:
    """Rows of cells as lines whose columns stay aligned however wide a value grows;
    columns in `right` are right-aligned."""
    widths = [max(len(r[k]) for r in rows if k < len(r)) for k in range(max(map(len, rows)))]
    lines = []
    for r in rows:
        cells = [c.rjust(widths[k]) if k in right else c.ljust(widths[k]) for k, c in enumerate(r)]
        lines.append((" " * gap).join(cells).rstrip())
    return lines


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

    rows = [["id", "method", "epoch", "row", "frozen MSE train", "test", "saved at"]]
    bad = []
    for i in infos:
        if i.error:
            bad.append(f"{i.id}  unreadable: {i.error}")
            continue
        rows.append(
            [
                i.id,
                i.method,
                f"{i.epoch}/{i.epochs}",
                f"{i.row:,}/{i.rows_per_epoch:,}",
                fmt_loss(i.frozen_mse_train),
                fmt_loss(i.frozen_mse_test),
                i.saved_at + (" done" if i.finished else ""),
            ]
        )
    return "\n".join(aligned(rows, right={2, 3, 4, 5}) + bad)


def resume_command(
    run_id: str, root: Path, *, headless: bool = False, epochs: int | None = None
) -> str:
    """The exact command that continues session `run_id` saved under `root`: `--sessions`
    only when `root` is not where a plain command looks, `--epochs` for a finished run."""
    words = ["freqtui", "train", "--headless"] if headless else ["freqtui"]
    words += ["--resume", run_id]
    if Path(root).resolve() != sessions_dir(None).resolve():
        words += ["--sessions", str(root)]
    if epochs is not None:
        words += ["--epochs", str(epochs)]
    return shlex.join(words)


def exit_message(
    run_id: str,
    root: Path,
    *,
    saved: bool,
    finished: bool,
    epochs: int,
    headless: bool = False,
    save_failed: bool = False,
) -> str:
    """What is printed when the console or a headless run ends: the session and the
    command that resumes it (a finished run needs more epochs to train on). After a failed
    save it never says "finished": the newest state is not the one on disk."""
    if not saved:
        return f"session {run_id}: nothing saved (no snapshot on disk), nothing to resume"
    if save_failed:
        cmd = resume_command(run_id, root, headless=headless)
        return (
            f"session {run_id}: NOT saved at the end (the last save failed, see stderr); "
            f"the newest snapshot on disk continues with: {cmd}"
        )
    more = epochs + 1 if finished else None
    cmd = resume_command(run_id, root, headless=headless, epochs=more)
    what = "finished; to train further" if finished else "saved; to continue"
    return f"session {run_id} {what}: {cmd}"


@dataclass(frozen=True)
class Line:
    """One event as a line of text, with the console's style for it."""

    text: str
    style: str = ""


def describe(e: ev.Event, rows_per_epoch: int | None = None) -> Line | None:
    """The one wording of an event; None for the live progress (StepStats), which the
    status bar and the panels show instead. With `rows_per_epoch`, an evaluation taken as
    an epoch closed is placed at that epoch's last row, as the panels stamp it."""
    if isinstance(e, ev.StateCheckDone):
        return Line(
            f"state check {'passed' if e.passed else 'FAILED'}: {e.detail}",
            "green" if e.passed else "bold red",
        )
    if isinstance(e, ev.Compiling):
        if e.done:
            how = "loaded from the cache" if e.cached else "compiled"
            return Line(f"{e.backend} kernels {how} in {e.seconds:.1f} s")
        return Line(f"loading the {e.backend} kernels (compiled on the first run, then cached)...")
    if isinstance(e, ev.EvalStarted):
        return Line(f"frozen evaluation at epoch {e.epoch}, row {e.row:,}...")
    if isinstance(e, ev.EvalDone):
        epoch, row = e.epoch, e.row
        if rows_per_epoch is not None and row <= 0 and epoch > 1:
            epoch, row = epoch - 1, rows_per_epoch
        return Line(
            f"frozen MSE (weights fixed) at epoch {epoch}, row {row:,}: "
            f"train {fmt_loss(e.train.overall)}, test {fmt_loss(e.test.overall)}",
            "bold cyan",
        )
    if isinstance(e, ev.EpochDone):
        each = ", ".join(
            f"f{b + 1} {fmt_loss(v)}" for b, v in enumerate(e.online_loss_by_block) if v is not None
        )
        return Line(
            f"epoch {e.epoch} done: mean online loss (weights moving) {fmt_loss(e.online_loss)}"
            + (f" ({each})" if each else "")
        )
    if isinstance(e, ev.ScheduleChanged):
        return Line("schedule: " + ", ".join(schedule_items(e.items, short=False)), "magenta")
    if isinstance(e, ev.Paused):
        return Line(f"paused at row {e.row:,}", "yellow")
    if isinstance(e, ev.Resumed):
        return Line(f"resumed at row {e.row:,}", "green")
    if isinstance(e, ev.SnapshotSaved):
        # the session folder was named when the run began; the run id and file name say
        # which snapshot, short enough not to wrap mid-path
        path = Path(e.path)
        return Line(f"snapshot saved ({e.reason}): {path.parent.name}/{path.name}", "green")
    if isinstance(e, ev.RunWarning):
        return Line(f"warning: {e.message}", "yellow")
    if isinstance(e, ev.SaveFailed):
        return Line(f"NOT SAVED: {e.message}; training goes on, saves are retried", "bold red")
    if isinstance(e, ev.Finished):
        how = "stopped" if e.stopped else "finished"
        if e.rows_per_epoch:
            return Line(
                f"training {how} at epoch {min(e.epoch, e.epochs)}/{e.epochs}, row "
                f"{e.row:,}/{e.rows_per_epoch:,}; {fmt_rows(e.rows_total)} trained in all",
                "bold",
            )
        return Line(f"training {how}: {fmt_rows(e.rows_total)} trained in all", "bold")
    if isinstance(e, ev.Failed):
        return Line(f"FAILED: {e.message}", "bold red")
    return None


def epochs_text(view: RunView) -> str:
    """The run's length: "30 epoch(s) of 2M rows", or, for a method that plans its own
    length (the clock's curriculum, then its polish), what it plans so far and the cap."""
    rows = fmt_rows(view.rows_per_epoch)
    if view.planned_epochs == view.config.epochs:
        return f"{view.config.epochs} epoch(s) of {rows}"
    return f"{view.planned_epochs} epoch(s) of {rows} planned so far (at most {view.config.epochs})"


# ---- where a run stands: one meaning for epoch, row and progress ---------------------
def position(epoch: int, row: int, epochs: int, rows_per_epoch: int) -> tuple[int, int]:
    """(epoch, row) as the console shows them: the epoch is 1-based and `row` the rows
    done in it. A run that has just closed an epoch (row 0 of the next, or past its last
    epoch once finished) is shown at the end of the epoch it closed: a finished run reads
    "epoch 30/30, row 2,000,000/2,000,000", never "row 0"."""
    if row <= 0 and epoch > 1:
        epoch, row = epoch - 1, rows_per_epoch
    if epoch > epochs:
        epoch, row = epochs, rows_per_epoch
    return epoch, row


def stamp(epoch: int, row: int, rows_per_epoch: int | None = None) -> str:
    """Which weights a frozen number is from: 'e3 r40,000' (epoch and row in it)."""
    if rows_per_epoch is not None and row <= 0 and epoch > 1:
        epoch, row = epoch - 1, rows_per_epoch
    return f"e{epoch} r{row:,}"


def run_fraction(epoch: int, row: int, epochs: int, rows_per_epoch: int) -> float:
    """The whole run's progress: rows done over the rows its planned epochs hold."""
    epoch, row = position(epoch, row, epochs, rows_per_epoch)
    total = max(1, epochs * rows_per_epoch)
    return min(1.0, max(0.0, ((epoch - 1) * rows_per_epoch + row) / total))


# the clock's stages by the engine's names; "phase" is not used on screen for them, since
# in this task a phase is the φ of the signal
STAGES = {"horizon": "grow the horizon", "S": "raise S", "polish": "polish"}


def schedule_items(schedule: tuple[tuple[str, str], ...], *, short: bool = True) -> list[str]:
    """The method's schedule in the console's words: the stage by its number and what it
    does, the S amplitude out of its full 1, restarts counted (their reason only with
    `short=False`: the run panel and the log have the room for it)."""
    out = []
    for key, value in schedule:
        if key == "phase":
            names = list(STAGES)
            k = names.index(value) + 1 if value in STAGES else 0
            label = STAGES.get(value, value)
            out.append(f"stage {k}/{len(names)} {label}" if k else f"stage {label}")
        elif key == "S amplitude":
            out.append(f"S amplitude {value} of 1")
        elif key == "restarts" and short:
            out.append(f"restarts {value.split(' ', 1)[0]}")
        elif key == "validation MSE":
            out.append(f"validation MSE: {value}")
        else:
            out.append(f"{key} {value}")
    return out


def run_settings(
    config: RunConfig, backend: str, defaults: dict[str, Any], *, short: bool = False
) -> list[str]:
    """The run's settings as items for the run panel: method, seed, lr, the epochs cap,
    the signal's duration and phase scale, the -O options that differ from the method's
    defaults (`defaults`; none when none differ), and the backend that trains. `short`:
    the one-line form (the backend beside the method)."""
    changed = {k: v for k, v in config.options.items() if defaults.get(k, object()) != v}
    options = " ".join(f"{k}={v}" for k, v in sorted(changed.items()))
    if short:
        items = [
            f"{config.method} ({backend})",
            f"seed {config.torch_seed}",
            f"lr {config.lr:g}",
            f"≤{config.epochs} epochs",
            f"{config.duration:g} s",
            f"phase scale {config.phase_scale:g}",
        ]
        return items + ([f"-O {options}"] if options else [])
    return [
        f"method {config.method}",
        f"seed {config.torch_seed}",
        f"lr {config.lr:g}",
        f"epochs ≤ {config.epochs}",
        f"duration {config.duration:g} s",
        f"phase scale {config.phase_scale:g}",
        *([f"-O {options}"] if options else []),
        f"backend {backend}",
    ]
