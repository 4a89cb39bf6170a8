"""One way to write numbers: separators, labelled durations, aligned tables."""

from __future__ import annotations

from pathlib import Path

from engine.store.sessions import SessionInfo
from freqtui.text import fmt_loss, fmt_seconds, sessions_table


def test_durations_say_their_unit():
    assert fmt_seconds(33) == "33 s"
    assert fmt_seconds(147) == "2 min 27 s"
    assert fmt_seconds(3720) == "1 h 02 min"
    assert fmt_seconds(float("inf")) == "-"


def test_a_small_loss_is_not_written_as_zero():
    assert fmt_loss(0.5008) == "0.5008"
    assert fmt_loss(0.0001) == "1.0e-04"


def test_the_sessions_table_stays_aligned_past_a_million_rows():
    import dataclasses

    fields = {f.name for f in dataclasses.fields(SessionInfo)}

    def info(id_, row, rows):
        values = dict(
            id=id_,
            path=Path("x"),
            method="clock",
            epoch=3,
            epochs=20,
            row=row,
            rows_per_epoch=rows,
            frozen_mse_train=0.0093,
            frozen_mse_test=0.0092,
            saved_at="2026-11-26T17:00:00",
            finished=False,
            error=None,
        )
        return SessionInfo(**{k: v for k, v in values.items() if k in fields})

    lines = sessions_table(
        [info("a", 40_000, 40_000), info("b", 1_040_000, 2_000_000)]
    ).splitlines()
    assert "1,040,000/2,000,000" in lines[2]
    # every column ends where its header ends (right-aligned numbers)
    for word in ("row", "train", "test"):
        end = lines[0].index(word) + len(word)
        assert all(line[end - 1] != " " and line[end] == " " for line in lines[1:]), word
