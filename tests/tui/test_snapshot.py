"""The main screen in deterministic states: runs that are not started, fed a fixed sequence
of events (no wall clock, no machine-dependent numbers on screen). Two stories at 80×24
and 120×40: a finished hand-off run (online loss low, frozen MSE at 0.5) and a clock run
mid-way (all blocks together, its schedule on the status line)."""

from __future__ import annotations

import numpy as np

from engine import events as ev
from engine.evaluation import FrozenMSE
from engine.run import TrainingRun
from engine.signals import test_set
from freqtui.app import FreqtuiApp
from tests.tui.conftest import short_config, step_stats


def handoff_events(config) -> list[ev.Event]:
    """One epoch of the hand-off's pattern through the four blocks: the online loss of f1
    falls far, the others chase their targets less well; frozen MSE stays at 0.5."""
    rows, n = config.rows_per_set, config.n_samples
    out: list[ev.Event] = [ev.StateCheckDone(True, 300, 0.4, "300 rows: state detached")]
    online = [None] * config.n_blocks
    floor = (1e-4, 0.05, 0.2, 0.3)
    for k in range(1, 81):
        row = k * rows // 80
        block = min((row - 1) // n, config.n_blocks - 1)
        into = ((row - 1) % n + 1) / n
        online[block] = 0.5 * (floor[block] / 0.5) ** into
        t0 = (row - 8) / config.fs % config.duration
        live_t = tuple(t0 + j / config.fs for j in range(8))
        out.append(
            step_stats(
                config,
                row=row,
                loss=online[block],
                by_block=tuple(online),
                live_t=live_t,
                live_target=tuple(
                    float(np.sin(2 * np.pi * config.frequencies[block] * t)) for t in live_t
                ),
                live_output=tuple(
                    float(0.9 * np.sin(2 * np.pi * config.frequencies[block] * t)) for t in live_t
                ),
            )
        )
    by_block = (3.9e-4, 0.2147, 0.3072, 0.3111)
    out.append(ev.EpochDone(1, float(np.mean(by_block)), by_block))
    out.append(
        ev.EvalDone(
            epoch=1,
            row=rows,
            rows_total=rows,
            train=FrozenMSE(0.5008, (0.5008, 0.5008, 0.5008, 0.5008)),
            test=FrozenMSE(0.5008, (0.5008, 0.5008, 0.5008, 0.5008)),
            seconds=0.5,
            test_outputs=np.full_like(test_set(config).targets, -0.03),
        )
    )
    out.append(ev.SnapshotSaved("sessions/snapshot-test/latest.pt", "end"))
    out.append(ev.Finished(rows, False, epoch=1, epochs=1, row=rows, rows_per_epoch=rows))
    return out


def clock_events(config, rows_per_epoch: int) -> list[ev.Event]:
    """A clock run in its third epoch: the horizon grew twice, the S amplitude is rising."""
    out: list[ev.Event] = []
    horizon = 1000
    for k, (h, amp, lr) in enumerate(((500, 0.0, 3e-3), (750, 0.0, 2e-3), (1000, 0.3, 1.5e-3))):
        horizon = min(config.n_samples, h)
        sched = (
            ("phase", "S" if amp > 0 else "horizon"),
            ("horizon", f"{horizon:,} rows"),
            ("S amplitude", f"{amp:.2g}"),
            ("lr", f"{lr:.2e}"),
        )
        out.append(ev.ScheduleChanged(sched))
        for j in range(20):
            step = k * 20 + j
            loss = 0.45 * 0.93**step + 0.004
            row = (step + 1) * 2_000
            live_t = tuple((horizon - 40 + i) / config.fs for i in range(40))
            f = config.frequencies[step % config.n_blocks]
            out.append(
                step_stats(
                    config,
                    row=row,
                    loss=loss,
                    by_block=tuple(loss * (1 + 0.5 * b) for b in range(config.n_blocks)),
                    epoch=3,
                    epochs=20,
                    rows_per_epoch=rows_per_epoch,
                    rows_total=2 * rows_per_epoch + row,
                    block=step % config.n_blocks,
                    eta_s=754.0,
                    elapsed_s=147.0,
                    c_norm=28.8 + step,
                    live_t=live_t,
                    live_target=tuple(float(np.sin(2 * np.pi * f * t)) for t in live_t),
                    live_output=tuple(float(0.8 * np.sin(2 * np.pi * f * t + 0.2)) for t in live_t),
                    schedule=sched,
                    blocks_together=True,
                )
            )
        if k == 1:
            test = test_set(config)
            outputs = np.stack(
                [0.9 * np.sin(2 * np.pi * f * test.t + 0.15) for f in config.frequencies]
            ).astype(np.float32)
            err = ((outputs - test.targets) ** 2).mean(axis=1)
            mse = FrozenMSE(float(err.mean()), tuple(float(e) for e in err))
            out.append(ev.EpochDone(2, 0.0412, (0.0301, 0.0398, 0.0445, 0.0503)))
            out.append(
                ev.EvalDone(
                    epoch=3,
                    row=40_000,
                    rows_total=2 * rows_per_epoch + 40_000,
                    train=mse,
                    test=mse,
                    seconds=0.5,
                    test_outputs=outputs,
                )
            )
    return out


def make_fed_app(sessions_root, **changes) -> FreqtuiApp:
    config = short_config(**changes)
    run = TrainingRun(config, sessions_root=sessions_root, run_id="snapshot-test")
    return FreqtuiApp(run=run, autostart=False)


async def plots_drawn(pilot) -> None:
    """The plots' worker threads (the test window, each evaluation's diagnostics) are done
    and their answers handled: the screen no longer depends on the machine's speed."""
    await pilot.pause()  # the events' messages handled: every worker is started
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def feed_handoff(pilot) -> None:
    app = pilot.app
    await pilot.pause()  # the main screen mounts its widgets
    app.memory_panel.total_mb = 4096.0  # the gauge's scale, not this machine's
    run = app.training
    run.trainer.epoch = run.config.epochs  # the trainer as a finished run leaves it
    run.save_snapshot("end")  # so the exit line can name the command that resumes it
    run.drain()  # (its own event is replaced by the fixed one below)
    for event in handoff_events(app.config):  # one drain per event, as a live run sends them
        app.handle_events([event], force=True)
    run.status = ev.RunState.FINISHED
    await plots_drawn(pilot)


async def feed_clock(pilot) -> None:
    app = pilot.app
    await pilot.pause()
    app.memory_panel.total_mb = 4096.0
    for event in clock_events(app.config, app.training.rows_per_epoch):
        app.handle_events([event], force=True)
    app.training.status = ev.RunState.RUNNING
    await plots_drawn(pilot)
    app.plots_panel._maybe_draw_frozen()
    await pilot.pause()


def test_handoff_finished_80x24(snap_compare, sessions_root):
    app = make_fed_app(sessions_root, epochs=1)
    assert snap_compare(app, run_before=feed_handoff, terminal_size=(80, 24))


def test_handoff_finished_120x40(snap_compare, sessions_root):
    app = make_fed_app(sessions_root, epochs=1)
    assert snap_compare(app, run_before=feed_handoff, terminal_size=(120, 40))


def test_clock_midway_80x24(snap_compare, sessions_root):
    app = make_fed_app(sessions_root, method="clock", epochs=20)
    assert snap_compare(app, run_before=feed_clock, terminal_size=(80, 24))


def test_clock_midway_120x40(snap_compare, sessions_root):
    app = make_fed_app(sessions_root, method="clock", epochs=20)
    assert snap_compare(app, run_before=feed_clock, terminal_size=(120, 40))


def test_clock_oscillator_tab_80x24(snap_compare, sessions_root):
    app = make_fed_app(sessions_root, method="clock", epochs=20)
    assert snap_compare(app, run_before=feed_clock, press=["v", "p"], terminal_size=(80, 24))


def test_plots_view_focused_on_f2_80x24(snap_compare, sessions_root):
    app = make_fed_app(sessions_root, epochs=1)
    assert snap_compare(app, run_before=feed_handoff, press=["2"], terminal_size=(80, 24))
