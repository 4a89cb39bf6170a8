"""Each kind of run message reaches the widgets that hold its data, found by their
handlers (`on_run_…`): a handler renamed by mistake would drop its data without a sound,
so the receivers of each kind are pinned here, and one event is followed to each."""

from __future__ import annotations

from engine import events as ev
from freqtui import messages
from freqtui.widgets.history_view import HistoryView
from freqtui.widgets.live_view import LiveView
from freqtui.widgets.loss_panel import LossPanel
from tests.tui.conftest import step_stats

RECEIVERS = {
    messages.Progress: {
        "StatusBar",
        "RunPanel",
        "LossPanel",
        "MemoryPanel",
        "HiddenPanel",
        "HistoryView",
    },
    messages.LiveRows: {"LiveView"},
    messages.EvalDone: {"LossPanel", "HistoryView", "PlotsPanel"},
    messages.EpochDone: {"LossPanel"},
    messages.StateCheckDone: {"MemoryPanel"},
}


async def test_each_message_kind_reaches_the_widgets_that_show_its_data(make_app):
    app = make_app(autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        got = {kind: {type(w).__name__ for w in ws} for kind, ws in app.listeners.items()}
        assert got == RECEIVERS
        # and an event handed to the app arrives in each one's own data
        config = app.config
        live = dict(live_t=(0.0, 0.001), live_target=(0.0, 0.1), live_output=(0.0, 0.05))
        stats = step_stats(config, row=400, loss=0.25, by_block=(0.25, None, None, None), **live)
        mse = ev.FrozenMSE(0.4, (0.4,) * config.n_blocks)
        done = ev.EvalDone(1, 400, 400, mse, mse, 0.1, None)
        app.handle_events([stats, done, ev.EpochDone(1, 0.3, (0.3, None, None, None))], force=True)
        await pilot.pause()
        history, live, table = (app.query_one(t) for t in (HistoryView, LiveView, LossPanel))
        assert history.online == [(400, 0.25)] and [e.test for e in history.evals] == [mse]
        assert len(live.live) == 2
        assert table.shown.test == mse and table.epoch_label == "e1"
        await pilot.press("q")
