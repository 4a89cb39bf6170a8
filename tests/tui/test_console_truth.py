"""The console tells the truth about itself (issue 20): every frozen number says which
weights it is from and a resumed run shows one evaluation everywhere; the status names the
epoch's progress and the run's (a finished run reads row N/N); the run panel keeps the
settings on screen; the key bar keeps `o sessions` at 80 columns; a file from models/ opens
as a new session and nothing is written beside it."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from engine.errors import FreqtuiError
from engine.evaluation import FrozenMSE, evaluate
from engine.history import EvalRecord
from engine.run import TrainingRun
from engine.store.compare import list_models, models_dir
from freqtui import app as app_module
from freqtui.app import FreqtuiApp
from freqtui.text import fmt_loss
from freqtui.widgets.key_bar import KeyBar
from freqtui.widgets.loss_panel import LossPanel
from freqtui.widgets.plots_panel import PlotsPanel
from freqtui.widgets.run_panel import RunPanel
from freqtui.widgets.status_bar import StatusBar
from tests.tui.conftest import open_browser, short_config, step_stats, trainer_threads, wait_for

RESTART = (
    "2 (restart 2: the 1 Hz block stalled at 0.45 (target 1 Hz, window 1,500 rows), "
    "fresh weights from the first stage)"
)


def status_lines(app) -> list[str]:
    return app.query_one(StatusBar).render().plain.split("\n")


def finished_snapshot(
    sessions_root: Path, *, stale_eval: bool = False, final_eval: bool = False
) -> Path:
    """A one-epoch hand-off session saved as a finished run leaves it; with `stale_eval`
    its history's last frozen evaluation is not of the weights saved (they trained on);
    with `final_eval` it is the evaluation of the saved weights, taken at the end."""
    run = TrainingRun(short_config(epochs=1), state_check=False, sessions_root=sessions_root)
    run.trainer.epoch = 1  # the trainer as a finished run leaves it: epoch 2 of 1, row 0
    run.history.rows_total = run.config.rows_per_set
    if stale_eval:
        old = FrozenMSE(0.9362, (0.9362, 0.9, 0.95, 0.99))
        run.history.add_eval(EvalRecord(1, 1_000, 1_000, old, old))
    if final_eval:
        result = evaluate(run.model, run.config)
        rows = run.history.rows_total
        run.history.add_eval(EvalRecord(2, 0, rows, result.train, result.test))
    return run.save_snapshot("end")


def listing(folder: Path) -> list[tuple[str, int, int]]:
    """Every file in `folder` (hidden ones too) with its size and mtime."""
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())


# ---- item 4: one evaluation per panel, stamped -------------------------------------------
async def test_a_resumed_run_shows_one_stamped_evaluation_in_the_table_and_the_plots(
    sessions_root,
):
    """After a resume the history's last evaluation (0.9362 here) is of older weights: the
    table and the plots both show the one evaluation of the saved weights, stamped."""
    path = finished_snapshot(sessions_root, stale_eval=True)
    resumed = TrainingRun.resume(path, root=sessions_root)
    app = FreqtuiApp(run=resumed, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table, plots = app.query_one(LossPanel), app.query_one(PlotsPanel)
        await wait_for(pilot, lambda: plots.outputs is not None, "the saved weights' plots", 60)
        await pilot.pause()
        label = "saved weights e1 r4,000"
        assert table.shown_label == plots.eval_label == label
        assert table.shown is plots.shown  # one evaluation, not two
        assert table.shown.test.overall != pytest.approx(0.9362)
        assert plots.per_block == table.shown.test.per_block  # the plot titles' numbers
        lines = [line.plain for line in table.lines(52)]
        assert lines[-1].endswith(f"frozen at {label}")
        f1 = next(line for line in lines if line.startswith("f1 "))
        assert "0.9362" not in f1 and f"{table.shown.test.per_block[0]:.4f}" in f1
        # the frozen tab's legend and the history title name the same weights
        assert label in str(plots.query_one("#freq-legend").render())
        assert len(resumed.history.evals) == 1  # recorded nowhere
        await pilot.press("q")


async def test_a_resumed_run_whose_last_evaluation_is_of_its_saved_weights_shows_that_one(
    sessions_root,
):
    path = finished_snapshot(sessions_root, final_eval=True)
    resumed = TrainingRun.resume(path, root=sessions_root)
    app = FreqtuiApp(run=resumed, autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table, plots = app.query_one(LossPanel), app.query_one(PlotsPanel)
        await wait_for(pilot, lambda: plots.outputs is not None, "the saved weights' plots", 60)
        await pilot.pause()
        assert table.shown == plots.shown == resumed.history.evals[-1]
        # recorded as "epoch 2, row 0" (the next epoch's start): shown as the end of epoch 1
        assert table.shown_label == "saved weights e1 r4,000"
        assert table.lines(76)[-1].plain.endswith("frozen at saved weights e1 r4,000")
        await pilot.press("q")


async def test_e_stamps_the_table_and_every_plot_with_the_same_weights(app):
    run = app.training
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        await pilot.press("e")
        table, plots = app.query_one(LossPanel), app.query_one(PlotsPanel)
        await wait_for(pilot, lambda: plots.outputs is not None, "the evaluation drawn")
        entry = run.history.evals[0]
        at = f"e{entry.epoch} r{entry.row:,}"
        assert table.shown_label == plots.eval_label == at
        assert table.lines(52)[-1].plain.endswith(f"frozen at {at}")
        assert at in str(plots.query_one("#freq-legend").render())
        titles = []
        plt = plots.query_one("#history").plt
        title = plt.title
        plt.title = lambda text: (titles.append(text), title(text))
        plots.history.draw()
        assert titles and titles[-1].endswith(f"frozen test {fmt_loss(entry.test.overall)} at {at}")
        await pilot.press("q")


# ---- item 5: status words ----------------------------------------------------------------
async def test_the_status_names_the_epochs_progress_and_the_whole_runs(make_app):
    app = make_app(autostart=False, epochs=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = step_stats(app.config, row=1_000, loss=0.1, by_block=(0.1,) * 4, epoch=2, epochs=4)
        app.handle_events([s], force=True)
        await pilot.pause()
        line1, line2 = status_lines(app)
        assert "epoch 2/4" in line1 and "row 1,000/4,000" in line1
        # 1,000 of 4,000 rows in this epoch; 5,000 of 16,000 in the run
        assert "epoch 25% " in line2 and "run 31% " in line2
        assert "run ETA " in line1  # the ETA is the whole run's, and says so
        assert line2.count("█") >= 2  # both bars drawn at 120 columns
        await pilot.press("q")


async def test_a_finished_model_reads_row_n_of_n_and_the_whole_run_done(sessions_root):
    path = finished_snapshot(sessions_root)
    app = FreqtuiApp(run=TrainingRun.resume(path, root=sessions_root), autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        line1, line2 = status_lines(app)
        assert "epoch 1/1" in line1 and "row 4,000/4,000" in line1 and "row 0/" not in line1
        assert "epoch 100%" in line2 and "run 100%" in line2
        # the log says the same: at the end of the epoch, not at "row 0"
        assert "finished at epoch 1, row 4,000" in app.event_log.messages[0]
        await pilot.press("q")


async def test_the_clock_stage_and_restarts_read_whole_at_80_columns(make_app):
    """ "phase S" beside "S amplitude 0" read as a contradiction: the stage is named by what
    it does, the amplitude out of its 1; the long restart reason is never cut mid-word."""
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        schedule = (
            ("phase", "S"),
            ("horizon", "1,000 rows"),
            ("S amplitude", "0"),
            ("lr", "3.00e-03"),
            ("restarts", RESTART),
        )
        s = step_stats(app.config, row=800, loss=0.1, by_block=(0.1,) * 4, schedule=schedule)
        app.handle_events([s], force=True)
        await pilot.pause()
        lines = status_lines(app)
        assert all(len(line) <= 79 for line in lines)  # nothing runs off the screen
        assert "stage 2/3 raise S" in lines[1] and "phase S" not in lines[1]
        assert "restart 2:" not in lines[1]  # the reason is the run panel's
        await pilot.press("r")
        await pilot.pause()
        panel = [line.plain for line in app.run_panel.lines(76)]
        assert all(len(line) <= 76 for line in panel)
        text = " ".join(" ".join(line.split()) for line in panel)
        assert "S amplitude 0 of 1" in text
        assert "window 1,500 rows), fresh weights from the first stage)" in text  # whole
        await pilot.press("q")


# ---- the run panel -----------------------------------------------------------------------
async def test_the_run_panel_starts_collapsed_at_80x24_and_r_toggles_it(make_app):
    app = make_app(autostart=False, method="clock", lr=0.002, options={"thr": 0.05})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        panel = app.query_one(RunPanel)
        assert panel.collapsed and panel.size.height == 1
        one = panel.render().plain
        assert one.startswith("run clock (torch) · seed 0 · lr 0.002 · ")
        assert one.endswith(("r: more", "(r)")) and len(one) <= 78
        await pilot.press("r")
        await pilot.pause()
        assert not panel.collapsed and panel.size.height > 1
        text = panel.render().plain
        cap = f"epochs ≤ {app.config.epochs}"
        for item in (cap, "duration 1 s", "phase scale 1", "-O thr=0.05", "backend torch"):
            assert item in text
        assert "-O k0" not in text  # only the options that differ from the defaults
        await pilot.press("r")
        await pilot.pause()
        assert panel.collapsed and panel.size.height == 1
        await pilot.press("q")


async def test_the_run_panel_is_open_at_120x40(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        panel = app.query_one(RunPanel)
        assert not panel.collapsed
        text = panel.render().plain
        assert "duration 1 s" in text and "backend torch" in text
        assert "-O" not in text  # no option differs from the method's defaults
        await pilot.press("q")


# ---- item 11: cut labels -----------------------------------------------------------------
async def test_the_key_bar_keeps_o_sessions_at_80_columns(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = app.query_one(KeyBar).render().plain
        assert len(keys) <= 80
        for key in (" o sessions ", " ? help ", " q quit ", " space pause "):
            assert key in keys
        await pilot.press("q")


async def test_the_history_legend_keeps_its_zero_label_at_120_columns(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        plots = app.query_one(PlotsPanel)
        plots.show_tab("tab-history")
        await pilot.pause()
        legend = plots.query_one("#tab-history .legend")
        text = str(legend.render())
        assert text.rstrip().endswith("─ 0.5")
        assert len(text.rstrip()) <= legend.content_region.width
        await pilot.press("q")


# ---- item 6: models/ -----------------------------------------------------------------------
@pytest.fixture
def models_copy(tmp_path, sessions_root, monkeypatch) -> Path:
    """A models/ folder of one committed-like snapshot (a short hand-off run), listed by
    the console's browser in place of the repository's."""
    folder = tmp_path / "models"
    folder.mkdir()
    run = TrainingRun(short_config(), state_check=False, sessions_root=tmp_path / "elsewhere")
    run.history.rows_total = 10
    shutil.copy(run.save_snapshot("end"), folder / "handoff_tiny.pt")
    monkeypatch.setattr(app_module, "list_models", lambda: list_models(folder))
    return folder


@pytest.mark.slow
async def test_opening_a_models_file_twice_makes_two_new_sessions_and_writes_nothing_there(
    make_app, sessions_root, models_copy
):
    before = listing(models_copy)
    first = make_app(autostart=False)
    app = first
    async with app.run_test(size=(120, 40)) as pilot:
        ids = []
        for _ in range(2):
            current = app.training
            table = await open_browser(pilot)
            row = next(
                k for k in range(table.row_count) if "handoff_tiny" in str(table.get_row_at(k)[1])
            )
            for _ in range(row):
                await pilot.press("down")
            await pilot.press("enter")
            await wait_for(
                pilot, lambda c=current: app.training is not c, "the models/ file opened"
            )
            new = app.training
            assert new.sessions_root == sessions_root and new.run_id not in ids
            ids.append(new.run_id)
            assert any(
                "handoff_tiny.pt opened as a new session" in m and new.run_id in m
                for m in app.event_log.messages
            )
            await wait_for(pilot, lambda n=new: n.history.rows_total > 10, "the new session trains")
            assert listing(models_copy) == before  # no .lock, no snapshot, nothing
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert trainer_threads() == []
    assert listing(models_copy) == before
    assert (sessions_root / ids[-1] / "latest.pt").exists()


def test_resuming_a_committed_model_writes_nothing_under_models(tmp_path):
    """The repository's own models/ file, resumed as the CLI resumes it: a new session
    under the sessions folder; models/ is byte for byte as it was."""
    before = listing(models_dir())
    run = None
    for model in list_models():  # the first that resumes (older schedules only evaluate)
        try:
            run = TrainingRun.resume(model.path, root=tmp_path / "sessions")
            break
        except FreqtuiError:
            assert listing(models_dir()) == before
    if run is None:
        pytest.skip("no resumable committed snapshot in models/")
    # a refused one left no empty session folder behind either
    assert [p.name for p in (tmp_path / "sessions").iterdir()] == [run.run_id]
    held = run.claim()
    try:
        assert run.sessions_root == tmp_path / "sessions"
        assert (tmp_path / "sessions" / run.run_id / ".lock").exists()
        assert run.origin.startswith(f"{model.path} opened as a new session {run.run_id}")
        assert listing(models_dir()) == before
    finally:
        held.release()


# ---- lines told apart by marker as well as colour --------------------------------------------
def screen_text(app) -> str:
    """The screen as plain text, as a user without colour would read it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)


async def test_the_plots_tell_their_lines_apart_without_colour(sessions_root):
    from tests.tui.test_snapshot import feed_handoff, make_fed_app

    app = make_fed_app(sessions_root, epochs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await feed_handoff(pilot)
        frozen = screen_text(app)
        # the output in quarter blocks, the target a braille line, the legend saying which
        plot_rows = "".join(line for line in frozen.splitlines() if "┤" in line)
        assert set(plot_rows) & set("▖▗▘▙▚▛▜▝▞▟▀▄") and set(plot_rows) & set("⡀⢀⠁⠈⣀⠉")
        assert "▚ output (frozen)" in frozen and "━ target" in frozen
        await pilot.press("p")  # the oscillator tab: one marker per frequency
        await pilot.pause(0.3)
        osc = screen_text(app)
        assert "• f1   + f2   x f3   * f4" in osc
        plot_area = "\n".join(line for line in osc.splitlines() if "┤" in line or "│" in line)
        assert all(mark in plot_area for mark in "+x*")
        await pilot.press("q")


def test_evaluating_and_reporting_a_models_file_writes_nothing_beside_it(
    models_copy, tmp_path, capsys
):
    from freqtui.cli import main

    before = listing(models_copy)
    path = models_copy / "handoff_tiny.pt"
    assert main(["eval", str(path)]) == 0
    assert "frozen MSE (weights fixed)" in capsys.readouterr().out
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 0
    assert listing(models_copy) == before
