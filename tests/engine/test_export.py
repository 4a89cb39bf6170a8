"""The metric history as one table (engine/export.py): every online point, epoch mean,
frozen evaluation and schedule change of a History becomes rows of the documented
columns, and the history keeps what the table needs across a snapshot."""

from __future__ import annotations

import pytest

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.export import COLUMN_NAMES, metric_table, position
from engine.history import EvalRecord, FrozenMSE, History
from engine.store.safeload import check_history

CONFIG = RunConfig(method="handoff", duration=0.1, backend="torch")  # 400 rows an epoch


def history() -> History:
    h = History()
    h.add_online(100, 0, 0.5, (0.5, None, None, None))
    h.add_online(400, 3, 0.4, (0.45, 0.41, 0.39, 0.38))
    h.add_epoch(1, 0.42, (0.5, 0.4, None, 0.3))
    m = FrozenMSE(0.3, (0.1, 0.2, 0.4, 0.5))
    h.add_eval(EvalRecord(1, 400, 400, m, FrozenMSE(0.35, (0.15, 0.25, 0.45, 0.55))))
    h.add_schedule(400, 1, 400, (("phase", "S"), ("horizon", "200 rows")))
    return h


def test_every_value_of_the_history_is_a_row_with_every_column():
    t = metric_table(history(), CONFIG, run_id="r", rows_per_epoch=400)
    assert all(tuple(r) == COLUMN_NAMES for r in t.rows)
    kinds = [r["kind"] for r in t.rows]
    # online: 1 + 1 (blocks not trained yet are left out) and 1 + 4; epoch: 1 + 3
    assert kinds.count("online") == 2 + 5
    assert kinds.count("epoch") == 1 + 3
    assert kinds.count("frozen") == 2 * (1 + 4)
    assert kinds.count("schedule") == 2
    frozen = {(r["set"], r["frequency_hz"]): r for r in t.rows if r["kind"] == "frozen"}
    assert frozen["train", "all"]["value"] == 0.3
    assert frozen["test", "7"]["value"] == 0.55
    assert {(r["epoch"], r["row"], r["rows_total"]) for r in frozen.values()} == {(1, 400, 400)}
    online = [r for r in t.rows if r["kind"] == "online" and r["rows_total"] == 400]
    assert {r["frequency_hz"]: r["value"] for r in online} == {
        "all": 0.4, "1": 0.45, "3": 0.41, "5": 0.39, "7": 0.38,
    }  # fmt: skip
    assert {r["trained_hz"] for r in online} == {"7"}  # the block of the chunk's last row
    sched = [(r["setting"], r["setting_value"]) for r in t.rows if r["kind"] == "schedule"]
    assert sched == [("phase", "S"), ("horizon", "200 rows")]
    # online loss and frozen MSE are never in one row: only frozen rows name a set
    assert all((r["set"] != "") == (r["kind"] == "frozen") for r in t.rows)


def test_a_run_that_trains_every_block_at_once_says_so():
    t = metric_table(history(), CONFIG, run_id="r", rows_per_epoch=400, blocks_together=True)
    assert {r["trained_hz"] for r in t.rows if r["kind"] == "online"} == {"all"}


def test_positions_match_the_evaluations_own_stamp():
    assert position(0, 400) == (1, 0)
    assert position(1, 400) == (1, 1)
    assert position(400, 400) == (1, 400)  # an epoch's end, as its evaluation records it
    assert position(401, 400) == (2, 1)


def test_the_history_keeps_per_block_loss_and_schedule_through_a_snapshot():
    d = history().to_dict()
    check_history("snap.pt", d)  # what a snapshot's reader checks
    back = History.from_dict(d)
    assert back.online_by_block == [(0.5, None, None, None), (0.45, 0.41, 0.39, 0.38)]
    assert back.schedule == [(400, 1, 400, (("phase", "S"), ("horizon", "200 rows")))]


def test_an_older_history_without_them_still_exports():
    d = history().to_dict()
    del d["online_by_block"], d["schedule"]
    t = metric_table(History.from_dict(d), CONFIG, run_id="r", rows_per_epoch=400)
    assert [r["frequency_hz"] for r in t.rows if r["kind"] == "online"] == ["all", "all"]


def test_thinning_keeps_points_and_per_block_losses_together():
    h = History(max_points=8)
    for i in range(100):
        h.add_online(i, 0, float(i), (float(i),))
    assert len(h.online) == len(h.online_by_block)
    assert all(p[2] == b[0] for p, b in zip(h.online, h.online_by_block, strict=True))


@pytest.mark.parametrize(
    "change",
    [
        {"online_by_block": "x"},
        {"online_by_block": [[float("nan")]]},
        {"schedule": [{"rows_total": 1, "epoch": 1, "row": 1, "schedule": [["a", 1]]}]},
        {"schedule": [{"rows_total": -1, "epoch": 1, "row": 1, "schedule": []}]},
        {"schedule": [{"rows_total": 1, "epoch": 1, "row": 1, "schedule": [["a", "b" * 500]]}]},
    ],
)
def test_a_bad_per_block_loss_or_schedule_in_a_file_is_refused(change):
    with pytest.raises(FreqtuiError, match="bad history"):
        check_history("snap.pt", {**history().to_dict(), **change})
