"""Training speed inside the console against headless: rows/s of the same run, same method
and backend, driven (a) by a plain drain loop like `freqtui train --headless` and (b) by
the running Textual app under Pilot at 120x40 with the live plot on screen (its most
expensive view). Goal: app >= 0.9 x headless.

    python bench/console.py [--method M] [--backend torch|fused|both] [--rows N] [--rounds K]

The method defaults to the default config's (clock); `--method handoff` measures the
hand-off's row-by-row trainer, whose chunks are smallest and so the most exposed to the UI.

The UI thread competes with the trainer thread for the GIL and for the CPU, so the rate is
measured on the trainer's side: a wall-clock mark at the end of every chunk of rows, over
a window of `--rows` rows after `warm` rows (so kernel loading and the app's start-up are
not in it). A window longer than an epoch includes the epoch-end frozen evaluations, which
the worker runs alike under both drivers. Rounds alternate the order of the two drivers so
load from other processes on a shared machine falls on both alike; the median is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import RunConfig  # noqa: E402
from engine.run import TrainingRun  # noqa: E402

UI_SHARE: list[float] = []  # UI thread CPU / wall time in the last in-app window
DEFAULT_ROWS = {"torch": 4_000, "fused": 200_000}
WARM_ROWS = {"torch": 300, "fused": 40_000}  # fused: the first epoch (<1 s) is start-up
# methods that train whole windows (F x T rows a step): a window of many steps
WINDOW_ROWS, WINDOW_WARM = 400_000, 40_000


class Marks:
    """Wraps the trainer's train_rows: (time, rows_total) at the end of every chunk."""

    def __init__(self, run: TrainingRun) -> None:
        self.marks: list[tuple[float, int]] = []
        self.total = 0
        inner = run.trainer.train_rows

        def timed(n: int):
            chunk = inner(n)
            self.total += chunk.rows
            self.marks.append((time.perf_counter(), self.total))
            return chunk

        run.trainer.train_rows = timed

    def rate(self, warm: int, rows: int) -> float:
        inside = [m for m in self.marks if warm <= m[1] <= warm + rows]
        (t0, r0), (t1, r1) = inside[0], inside[-1]
        return (r1 - r0) / (t1 - t0)


METHOD = RunConfig().method  # set from --method in main()


def new_run(backend: str, rows: int, root: Path) -> tuple[TrainingRun, Marks]:
    config = RunConfig(method=METHOD, backend=backend)
    if METHOD == "handoff":  # as many epochs of 40,000 rows as the window needs
        config = config.replace(epochs=rows // config.rows_per_set + 1)
    run = TrainingRun(config, state_check=False, sessions_root=root)
    return run, Marks(run)


def headless(backend: str, warm: int, rows: int, root: Path) -> float:
    run, marks = new_run(backend, warm + rows, root)
    run.start()
    try:
        while marks.total < warm + rows and run.alive:
            run.drain()  # what freqtui/commands/headless.py does, minus the printing
            time.sleep(0.1)
    finally:
        run.stop()
    return marks.rate(warm, rows)


def in_app(backend: str, warm: int, rows: int, root: Path, live: bool = False) -> float:
    from freqtui.app import FreqtuiApp

    run, marks = new_run(backend, warm + rows, root)
    app = FreqtuiApp(run=run, autostart=False)
    # (rows, wall, UI-thread CPU seconds) every 0.1 s
    ui: list[tuple[int, float, float]] = []

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            if live:
                app.plots_panel.show_tab("tab-live")  # the costliest view on screen
                await pilot.pause()
            run.start()  # after the switch: the app is idle when training begins
            while marks.total < warm + rows and run.alive:
                ui.append((marks.total, time.perf_counter(), time.thread_time()))
                # a plain sleep: pilot.pause() would force extra repaints a user never causes
                await asyncio.sleep(0.1)
            ui.append((marks.total, time.perf_counter(), time.thread_time()))
            await pilot.press("q")

    try:
        asyncio.run(drive())  # on this thread: thread_time() is the UI thread's CPU time
    finally:
        run.stop()
    inside = [u for u in ui if u[0] >= warm]
    (_, w0, c0), (_, w1, c1) = inside[0], inside[-1]
    UI_SHARE.append((c1 - c0) / (w1 - w0) if w1 > w0 else float("nan"))
    return marks.rate(warm, rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("torch", "fused", "both"), default="both")
    p.add_argument("--rows", type=int, help="rows in the measured window (default per backend)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--method", default=RunConfig().method, help="default: the default config's")
    args = p.parse_args()
    global METHOD
    METHOD = args.method
    backends = ["torch", "fused"] if args.backend == "both" else [args.backend]
    if METHOD != "handoff":
        backends = backends[:1]  # window methods train in torch whatever the backend
    print(f"method {METHOD}; default backend {RunConfig().backend}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for backend in backends:
            windows = METHOD != "handoff"
            rows = args.rows or (WINDOW_ROWS if windows else DEFAULT_ROWS[backend])
            warm = WINDOW_WARM if windows else WARM_ROWS[backend]
            drivers = {
                "headless": partial(headless, backend, warm, rows, root),
                "app": partial(in_app, backend, warm, rows, root),
                "app+live": partial(in_app, backend, warm, rows, root, live=True),
            }
            got: dict[str, list[float]] = {name: [] for name in drivers}
            ui_share: dict[str, list[float]] = {"app": [], "app+live": []}
            for k in range(args.rounds):
                order = list(drivers) if k % 2 == 0 else list(drivers)[::-1]
                for name in order:
                    got[name].append(drivers[name]())
                    if name != "headless":
                        ui_share[name].append(UI_SHARE[-1])
                cells = ", ".join(f"{n} {got[n][-1]:,.0f}" for n in drivers)
                print(f"  {backend} round {k + 1} (rows/s): {cells}", flush=True)
            h = statistics.median(got["headless"])
            print(f"{backend}: {rows:,} rows, median of {args.rounds}: headless {h:,.0f} rows/s")
            for name, what in (("app", "as it opens"), ("app+live", "live plot shown")):
                a = statistics.median(got[name])
                verdict = "ok" if a >= 0.9 * h else "below the 0.9 goal"
                print(
                    f"  in the app ({what}): {a:,.0f} rows/s, ratio {a / h:.3f} ({verdict}); "
                    f"UI thread CPU {statistics.median(ui_share[name]):.1%} of one core"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
