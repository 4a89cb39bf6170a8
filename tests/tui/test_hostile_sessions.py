"""o with hostile files in the sessions folder: the browser opens at once and lists them as
unreadable; Enter on one is refused (the browser says why) and the current run goes on."""

from __future__ import annotations

import io
import time

import pytest
import torch

from freqtui.screens.sessions import SessionBrowser
from tests.tui.conftest import open_browser, wait_for


def hostile(kind: str) -> bytes:
    if kind == "shared":
        x: list = [0.0]
        for _ in range(60):  # 2^60 leaves when walked
            x = [x, x]
        obj = {"format": "freqtui", "version": 1, "kind": "snapshot", "trainer": {"w": x}}
    else:  # a list that holds itself
        x = []
        x.append(x)
        obj = {"format": "freqtui", "version": 1, "kind": "snapshot", "history": x}
    buf = io.BytesIO()
    torch.save({**obj, "checksum": "0" * 64}, buf)
    return buf.getvalue()


@pytest.mark.slow
async def test_o_lists_hostile_sessions_as_unreadable_and_refuses_them(app, sessions_root):
    for kind in ("shared", "itself"):
        (sessions_root / f"zz-{kind}").mkdir(parents=True)
        (sessions_root / f"zz-{kind}" / "latest.pt").write_bytes(hostile(kind))
    run = app.training
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: run.history.rows_total > 0, "the first rows")
        t0 = time.monotonic()
        table = await open_browser(pilot, 10)  # the browser at once, its listing soon after
        assert time.monotonic() - t0 < 5
        ids = [str(c) for c in table.get_column("id")]
        assert any(i.startswith("zz-shared") for i in ids)
        assert any(i.startswith("zz-itself") for i in ids)
        row = next(i for i, v in enumerate(ids) if v.startswith("zz-shared"))
        table.move_cursor(row=row)
        await pilot.press("enter")  # refused with a notification; the browser stays
        await pilot.pause(0.3)
        assert isinstance(app.screen, SessionBrowser)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SessionBrowser), "closed")
        assert app.training is run and app.is_running
        rows = run.history.rows_total
        await wait_for(pilot, lambda: run.history.rows_total > rows, "the run going on")
        await pilot.press("q")
