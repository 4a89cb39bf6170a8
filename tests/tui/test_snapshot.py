"""The main screen in a deterministic state: a run that is not started, fed a fixed
sequence of events (no wall clock, no machine-dependent numbers on screen)."""

from __future__ import annotations

from engine import events as ev
from engine.evaluation import FrozenMSE
from engine.run import TrainingRun
from engine.signals import test_set
from freqtui.app import FreqtuiApp
from tests.tui.conftest import short_config


def fixed_events(config) -> list[ev.Event]:
    rows = config.rows_per_set
    out: list[ev.Event] = [ev.StateCheckDone(True, 300, 0.4, "300 rows: state detached")]
    for k in range(1, 41):  # a falling online loss through blocks f1 and f2
        row = k * 40
        block = row // config.n_samples
        by_block = tuple(
            (0.4 / k if b == block else 0.3) if b <= block else None for b in range(config.n_blocks)
        )
        out.append(
            ev.StepStats(
                epoch=1,
                epochs=config.epochs,
                row=row,
                rows_per_epoch=rows,
                block=block,
                rows_total=row,
                rows_per_s=500.0,
                elapsed_s=row / 500,
                eta_s=(rows - row) / 500,
                online_loss=0.4 / k + 0.01,
                online_loss_by_block=by_block,
                rss_mb=512.0,
                rss_slope_mb_per_10k=0.5,
                leak_warning=False,
                h_norm=2.0,
                c_norm=4.0,
                saturated=0.125,
                gate_i=0.5,
                gate_f=0.625,
                gate_o=0.375,
                live_t=(row / 1000,),
                live_target=(0.5,),
                live_output=(0.25,),
            )
        )
    targets = test_set(config).targets
    out.append(
        ev.EvalDone(
            epoch=1,
            row=1600,
            rows_total=1600,
            train=FrozenMSE(0.5018, (0.5014, 0.5017, 0.5018, 0.5022)),
            test=FrozenMSE(0.5020, (0.5015, 0.5016, 0.5018, 0.5031)),
            seconds=0.5,
            test_outputs=0.5 * targets,
        )
    )
    out.append(ev.Paused(row=1600))
    return out


def make_fed_app(sessions_root) -> FreqtuiApp:
    config = short_config(epochs=2)
    run = TrainingRun(config, sessions_root=sessions_root, run_id="snapshot-test")
    return FreqtuiApp(run=run, autostart=False)


async def feed(pilot) -> None:
    app = pilot.app
    await pilot.pause()  # the main screen mounts its widgets
    app.memory_panel.total_mb = 4096.0  # the gauge's scale, not this machine's
    for event in fixed_events(app.config):  # one drain per event, as a live run delivers them
        app.handle_events([event], force=True)
    await pilot.pause()


def test_main_screen_80x24(snap_compare, sessions_root):
    assert snap_compare(make_fed_app(sessions_root), run_before=feed, terminal_size=(80, 24))


def test_main_screen_wide_140x40(snap_compare, sessions_root):
    assert snap_compare(make_fed_app(sessions_root), run_before=feed, terminal_size=(140, 40))


def test_plots_view_focused_on_f2_80x24(snap_compare, sessions_root):
    assert snap_compare(
        make_fed_app(sessions_root), run_before=feed, press=["2"], terminal_size=(80, 24)
    )
