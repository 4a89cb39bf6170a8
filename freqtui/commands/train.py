"""`freqtui [flags]`, `freqtui --resume ID|PATH` and `freqtui train --headless ...`: one
TrainingRun, new or continuing a saved session, trained in the console (freqtui/app.py)
or without it (commands/headless.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.store.writable import prepare_new, prepare_resume
from freqtui.flags import FLAG_OF

if TYPE_CHECKING:  # torch, numba and textual load only when a run is made
    from engine.run import TrainingRun


def resumed_run(
    id_or_path: str | Path,
    changes: Mapping[str, Any],
    root: Path | None = None,
    **kw: Any,
) -> TrainingRun:
    """`TrainingRun.resume` with the command line's `changes` (RunConfig field -> value,
    `options` -> the -O options; None: not given): the engine refuses a change to the
    science of the saved run, naming its flag; --epochs may grow."""
    from engine.run import TrainingRun

    names = {**FLAG_OF, "options": "--option"}
    return TrainingRun.resume(id_or_path, changes=changes, names=names, root=root, **kw)


def train(
    config: RunConfig,
    *,
    headless: bool = False,
    out: Path | None = None,
    sessions: Path | None = None,
    autosave: int | None = None,
    resume: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> int:
    """Train `config` (or, with `resume`, the saved session it names with the flags'
    `changes`) in the console, or on stdout when `headless`, saving into `sessions`.
    What paths and locks refuse is refused before the run is built (torch, numba, data)."""
    if out is not None and not headless:  # the console saves sessions, not a weights file
        raise FreqtuiError(
            "--out saves the weights of a headless run: add --headless "
            "(the console saves its session; `freqtui export` and `report` read it)"
        )
    weights = out
    if resume:
        path = prepare_resume(resume, sessions, weights)
        run = resumed_run(path, changes or {}, sessions, save_on_end=True)
    else:
        run_id = prepare_new(config.method, sessions, weights)
        from engine.run import TrainingRun

        run = TrainingRun(config, run_id=run_id, sessions_root=sessions, save_on_end=True)
    run.set_autosave(autosave)
    if headless:
        from freqtui.commands.headless import train_headless

        return train_headless(run, out, resumed=bool(resume))
    from freqtui.app import run_app

    return run_app(run)
