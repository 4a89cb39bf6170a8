"""`freqtui report` titles come from the run's real duration (issue 20, item 7): a 1-second
run's second Graph 2 page says it is the whole run, never "the whole 10 s"; the
diagnostics legend lists no frequency it does not draw; every frequency's curve has a
marker and a line style of its own."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from engine.config import RunConfig
from engine.evaluation import evaluate
from engine.run import TrainingRun
from engine.signals import test_set
from freqtui import charts
from freqtui.commands import report


def one_second_run(tmp_path) -> TrainingRun:
    config = RunConfig(method="handoff", duration=1.0, backend="torch", epochs=1)
    return TrainingRun(config, state_check=False, sessions_root=tmp_path / "sessions")


@pytest.mark.slow
def test_a_one_second_runs_report_says_the_second_page_is_the_whole_run(tmp_path):
    run = one_second_run(tmp_path)
    result, test = evaluate(run.model, run.config), test_set(run.config)
    whole = charts.graph2_figure(test, result)._suptitle.get_text()
    zoom = charts.graph2_figure(test, result, seconds=charts.ZOOM_S)._suptitle.get_text()
    assert whole.endswith("the whole 1 s")
    assert "10 s" not in zoom and "the whole 1 s" in zoom
    assert f"this page is the same as {charts.GRAPH2}" in zoom
    # the pages are written, and the second one is the whole run indeed
    out = tmp_path / "report"
    written = report.write_report(run.save_snapshot("end"), out)
    assert out / report.GRAPH2_ZOOM in written
    a = matplotlib.image.imread(out / charts.GRAPH2)
    b = matplotlib.image.imread(out / report.GRAPH2_ZOOM)
    assert a.shape == b.shape  # same page, told apart only by the title that says so


def test_a_ten_second_runs_second_page_is_its_first_second():
    assert charts.graph2_title(10.0, 1.0).endswith(f"first 1 s (the whole 10 s on {charts.GRAPH2})")
    assert charts.graph2_title(2.5, 1.0).endswith(f"(the whole 2.5 s on {charts.GRAPH2})")


def test_the_diagnostics_legend_lists_only_what_it_draws_each_with_a_marker(tmp_path):
    """At 1 s the 1 Hz block's window (whole periods) is the whole signal: one value, drawn
    as one marker and said so in its legend entry."""
    run = one_second_run(tmp_path)
    result, test = evaluate(run.model, run.config), test_set(run.config)
    fig = charts.diagnostics_figure(test, result)
    for ax in fig.axes:
        curves = [line for line in ax.get_lines() if line.get_label().startswith("f")]
        assert len(curves) == 4
        for line in curves:
            x = np.asarray(line.get_xdata(), dtype=float)
            y = np.asarray(line.get_ydata(), dtype=float)
            assert len(x) >= 1 and np.isfinite(y).any()  # something on the axes
            if np.ptp(x) == 0:
                assert line.get_marker() not in (None, "None", "", " ")
                assert "one window, the whole 1 s" in line.get_label()
        assert len({line.get_marker() for line in curves}) == 4  # told apart without colour
        assert len({str(line.get_linestyle()) for line in curves}) == 4
    f1 = next(line for line in fig.axes[0].get_lines() if line.get_label().startswith("f1"))
    assert "one window, the whole 1 s" in f1.get_label()
