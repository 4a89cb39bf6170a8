"""What a new user must see at a glance: honest sparklines, online loss and frozen MSE side
by side per frequency, a resumed session's plots at once, the session and its resume
command on exit, and a clear notice when the terminal is too small."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import torch

from engine import events as ev
from engine.evaluation import mse_of
from engine.run import TrainingRun
from engine.signals import test_set
from engine.store.sessions import sessions_dir
from freqtui.app import FreqtuiApp
from freqtui.cli import build_parser
from freqtui.screens.main import MIN_HEIGHT, MIN_WIDTH
from freqtui.text import fmt_loss
from freqtui.widgets.loss_panel import LEVELS, LossPanel
from freqtui.widgets.plots_panel import PlotsPanel
from freqtui.widgets.status_bar import StatusBar
from tests.float_bounds import frozen_mse_gap_bound
from tests.tui.conftest import short_config, step_stats, trainer_threads, wait_for


def spark_cells(line: str) -> str:
    return "".join(c for c in line if c in LEVELS)


async def test_a_flat_loss_draws_a_flat_sparkline_on_the_shared_scale(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        config = app.config
        for k in range(40):  # "all" flat at 0.001; f2 falls from 0.5 to 0.01
            f2 = 0.5 * (0.01 / 0.5) ** (k / 39)
            s = step_stats(config, row=40 * (k + 1), loss=0.001, by_block=(0.001, f2, None, None))
            app.handle_events([s], force=True)
        await pilot.pause()
        lines = [line.plain for line in app.query_one(LossPanel).lines(76)]
        row = {line.split()[0]: line for line in lines if line[:2] in ("al", "f1", "f2")}
        flat, falling = spark_cells(row["all"]), spark_cells(row["f2"])
        assert len(flat) > 20 and set(flat) == {LEVELS[0]}  # flat, at the shared minimum
        assert set(spark_cells(row["f1"])) == {LEVELS[0]}
        # log scale 0.001 .. 0.5: 0.01 sits at 7·log(10)/log(500) = 2.6 of 7 levels
        assert falling[0] == LEVELS[-1] and falling[-1] in LEVELS[2:4]
        assert list(falling) == sorted(falling, reverse=True)
        scale = next(line for line in lines if line.startswith("scale"))
        assert (
            f"{LEVELS[0]} {fmt_loss(0.001)}" in scale and f"{LEVELS[-1]} {fmt_loss(0.5)}" in scale
        )
        assert "log" in scale
        await pilot.press("q")


async def test_a_flat_loss_alone_draws_flat_not_full(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for k in range(30):
            s = step_stats(
                app.config, row=40 * (k + 1), loss=0.001, by_block=(0.001,) + (None,) * 3
            )
            app.handle_events([s], force=True)
        await pilot.pause()
        lines = [line.plain for line in app.query_one(LossPanel).lines(76)]
        cells = spark_cells(next(line for line in lines if line.startswith("all")))
        assert len(set(cells)) == 1 and LEVELS[-1] not in cells  # no range: no full bar
        await pilot.press("q")


@pytest.mark.slow
async def test_the_hand_off_table_shows_online_and_frozen_side_by_side(make_app):
    app = make_app(epochs=1)  # 4,000 rows, then the epoch's frozen evaluation
    run = app.training
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: run.status == "finished", "the one epoch to finish", 60)
        panel = app.query_one(LossPanel)
        await wait_for(pilot, lambda: panel.evals and panel.epoch_label, "the epoch's figures")
        epoch, mean, by_block = run.history.epochs[-1]
        record = run.history.evals[-1]
        lines = [line.plain for line in panel.lines(76)]
        head = lines[0] + lines[1]
        assert "online loss (weights moving)" in head and "frozen MSE" in head
        for name, k in [("all", 0)] + [(f"f{b + 1}", b + 1) for b in range(4)]:
            line = next(line for line in lines if line.split()[0] == name)
            online, frozen = line.split("│")
            now, last_epoch = online.split()[-2:]
            assert now == fmt_loss(panel.now[k])
            assert last_epoch == fmt_loss(mean if k == 0 else by_block[k - 1])
            tr = record.train.overall if k == 0 else record.train.per_block[k - 1]
            te = record.test.overall if k == 0 else record.test.per_block[k - 1]
            assert frozen.split() == [fmt_loss(tr), fmt_loss(te)]
        zero = next(line for line in lines if line.startswith("0.5"))
        assert "predicting zero" in zero and zero.split("│")[1].split() == ["0.5000", "0.5000"]
        assert len(lines[0]) <= 76 and all(len(line) <= 76 for line in lines)
        await pilot.press("q")


async def test_a_resumed_session_draws_its_plots_before_any_new_evaluation(sessions_root):
    first = TrainingRun(short_config(), state_check=False, sessions_root=sessions_root)
    first.start()
    try:
        while first.history.rows_total < 500:
            first.join(0.05)
        first.pause()  # evaluate the weights the snapshot will hold
        while first.status != "paused":
            first.join(0.05)
        first.request_eval()
        while not first.history.evals:
            first.join(0.05)
    finally:
        first.stop()
    first.save_snapshot()
    resumed = TrainingRun.resume(first.run_id, root=sessions_root)
    weights = {k: v.clone() for k, v in resumed.model.state_dict().items()}
    rng = torch.random.get_rng_state()
    app = FreqtuiApp(run=resumed, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        plots = app.query_one(PlotsPanel)
        # one frozen pass in a worker thread while the UI draws its first frame: 0.3-4 s
        # measured on this shared machine at load 8.6; generous for a heavier load
        await wait_for(pilot, lambda: plots.outputs is not None, "the plots of the past", 90)
        assert plots.diagnostics is not None and plots.evals == resumed.history.evals
        assert len(resumed.history.evals) == 1  # no new evaluation was recorded
        assert resumed.history.rows_total == first.history.rows_total  # nor any row trained
        # what is drawn is the saved weights' output: its MSE is the recorded one, within
        # the bound of two float32 evaluations (tests/float_bounds.py)
        test = test_set(resumed.config)
        drawn = resumed.frozen_test_outputs()
        assert np.array_equal(plots.outputs, drawn[:, : plots.outputs.shape[1]])
        overall, per_block = frozen_mse_gap_bound(resumed.model, test)
        recorded = resumed.history.evals[-1].test
        got = mse_of(drawn, test)
        assert plots.per_block == got.per_block  # the titles: the MSE of what is drawn
        assert abs(got.overall - recorded.overall) <= overall
        assert all(
            abs(a - b) <= bound
            for a, b, bound in zip(got.per_block, recorded.per_block, per_block, strict=True)
        )
        # and nothing the exact resume depends on moved
        assert torch.equal(torch.random.get_rng_state(), rng)
        assert all(torch.equal(v, weights[k]) for k, v in resumed.model.state_dict().items())
        await pilot.press("q")


async def test_q_prints_the_session_id_and_the_exact_resume_command(app, sessions_root):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    message = app.exit_message
    assert run.run_id in message
    command = message.split(": ", 1)[1]
    words = shlex.split(command)
    assert words[0] == "freqtui"
    args = build_parser().parse_args(words[1:])
    # the folder the command looks in (--sessions, else $FREQTUI_SESSIONS or ./sessions)
    assert args.resume == run.run_id
    assert sessions_dir(args.sessions).resolve() == sessions_root.resolve()
    assert (sessions_root / run.run_id / "latest.pt").exists()


async def test_ctrl_c_saves_and_quits_like_q(app, sessions_root):
    run = app.training
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert trainer_threads() == []
    assert (sessions_root / run.run_id / "latest.pt").exists()
    assert f"--resume {run.run_id}" in app.exit_message


async def test_below_the_least_size_a_notice_says_what_is_needed(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        assert app.screen.has_class("-too-small")
        notice = str(app.screen.query_one("#too-small").render())
        assert f"need at least {MIN_WIDTH}×{MIN_HEIGHT}" in notice
        assert not app.screen.query_one("#body").display
        await pilot.resize_terminal(MIN_WIDTH, MIN_HEIGHT)
        await pilot.pause()
        assert not app.screen.has_class("-too-small")
        assert app.screen.query_one("#body").display
        await pilot.press("q")


async def test_the_clock_status_says_all_blocks_and_shows_its_schedule(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        schedule = (("horizon", "1,500 rows"), ("S amplitude", "0.3"), ("lr", "2.00e-03"))
        s = step_stats(app.config, row=800, loss=0.1, by_block=(0.1,) * 4)
        s = ev.StepStats(**{**s.__dict__, "schedule": schedule, "blocks_together": True})
        app.handle_events([ev.ScheduleChanged(schedule), s], force=True)
        await pilot.pause()
        text = app.query_one(StatusBar).render().plain
        assert "all blocks" in text and "block f" not in text
        assert "horizon 1,500 rows" in text and "S amplitude 0.3 of 1" in text
        assert any(m.startswith("schedule: horizon 1,500 rows") for m in app.event_log.messages)
        # the whole schedule (the lr too, which gives way on the status line at 80 columns)
        # is in the run panel, opened by r
        await pilot.press("r")
        panel = "\n".join(line.plain for line in app.run_panel.lines(78))
        assert "now horizon 1,500 rows · S amplitude 0.3 of 1 · lr 2.00e-03" in panel
        await pilot.press("q")


async def test_the_status_shows_the_length_the_run_plans_not_the_cap(make_app):
    """The clock plans its own length (its curriculum, then a polish of its own): the status
    says "epoch 3/12" when --epochs only caps the run at 60."""
    app = make_app(autostart=False, epochs=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = step_stats(app.config, row=800, loss=0.1, by_block=(0.1,) * 4)
        s = ev.StepStats(**{**s.__dict__, "epoch": 3, "epochs": 12})
        app.handle_events([s], force=True)
        await pilot.pause()
        text = app.query_one(StatusBar).render().plain
        assert "epoch 3/12" in text and "/60" not in text
        await pilot.press("q")


async def test_v_on_a_wide_terminal_says_why_it_does_nothing(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        assert any("below 120 columns" in n.message for n in app._notifications)
        await pilot.press("q")


async def test_the_help_reads_whole_at_80x24(make_app):
    from textual.containers import VerticalScroll

    from freqtui.screens.help import HelpScreen

    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        scroll = app.screen.query_one(VerticalScroll)
        assert scroll.max_scroll_y == 0  # nothing hidden below the fold
        text = str(app.screen.query_one("Static").render())
        assert "online loss (weights moving)" in text and "frozen MSE (weights fixed)" in text
        from freqtui.widgets.loss_panel import NEAR_ZERO

        # red means what the table does: the help names the threshold the table uses
        assert f"red in the table means {NEAR_ZERO:g} or more" in " ".join(text.split())
        await pilot.press("escape")
        await pilot.press("q")
