"""`freqtui compare ID|PATH ... [--png FILE]`: the latest frozen MSE of each session, per
frequency, the best in each column marked among sessions on the same data (never across
different test sets); and the frozen-MSE histories overlaid against
rows trained (a PNG, shared log scale). The console's comparison screen shows the same."""

from __future__ import annotations

from pathlib import Path

from engine.errors import FreqtuiError
from engine.store.compare import (
    CompareTable,
    compare_table,
    load_histories,
    set_name,
)
from engine.store.files import atomic_write_bytes
from engine.store.sessions import sessions_dir
from engine.store.writable import check_out
from freqtui.charts import overlay_png
from freqtui.text import BEST, fmt_mse


def table_text(table: CompareTable) -> str:
    """The comparison as plain text: each session's data (set, duration, phase scale,
    train/test seeds) and method, then one column pair (train, test) per frequency; a
    line says what the marks mean, or why nothing is ranked."""
    width = max(24, *(len(h.id) for h in table.sessions))
    labels = [table.columns[c][0] for c in range(0, len(table.columns), 2)]
    lead = f"{'':4}{'':{width}}  {'':10}{'':>9}{'':>7}{'':>7}"
    head1 = lead + "".join(f"{label:>20}" for label in labels)
    head2 = (
        f"{'set':4}{'id':{width}}  {'method':10}{'duration':>9}{'phase':>7}{'seeds':>7}"
        + "".join(f"{'train':>10}{'test':>10}" for _ in labels)
    )
    lines = [
        f"frozen MSE (weights fixed), latest evaluation of each; {BEST} = least in its column "
        "among sessions on the same data (set)",
        table.ranking_note(),
        head1,
        head2,
    ]
    for r, h in enumerate(table.sessions):
        cells = "".join(
            f"{fmt_mse(v) + (BEST if table.is_best(r, c) else ''):>10}"
            for c, v in enumerate(table.values[r])
        )
        lines.append(
            f"{set_name(table.group[r]):4}{h.id:{width}}  {h.method:10}"
            f"{f'{h.duration:g} s':>9}{h.phase_scale:>7g}{h.seeds_text:>7}{cells}"
        )
    never = [h.id for h in table.sessions if h.latest_test is None]
    if never:
        lines.append(f"(never evaluated: {', '.join(never)})")
    return "\n".join(lines)


def compare(items: list[str], png: Path | None = None, sessions: Path | None = None) -> int:
    """`freqtui compare`: the table on stdout; with `png`, the overlay written there."""
    root = sessions_dir(sessions)
    if png is not None:
        check_out(png, "--png", "the PNG")  # before any session is read
    histories = load_histories(items, root)
    print(table_text(compare_table(histories)))
    if png is not None:
        try:
            atomic_write_bytes(png, overlay_png(histories))
        except OSError as exc:
            raise FreqtuiError(f"{png}: cannot write it ({exc.strerror or exc})") from None
        print(f"wrote {png}")
    return 0
