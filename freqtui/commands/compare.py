"""`freqtui compare ID|PATH ... [--png FILE]`: the latest frozen MSE of each session, per
frequency, the best in each column marked among sessions on the same data (never across
different test sets); and the frozen-MSE histories overlaid against
rows trained (a PNG, shared log scale). The console's comparison screen shows the same."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from engine.errors import FreqtuiError
from engine.store.compare import (
    CompareTable,
    SessionHistory,
    compare_table,
    load_histories,
    set_name,
)
from engine.store.files import atomic_write_bytes
from engine.store.sessions import sessions_dir
from engine.store.writable import check_out
from freqtui.text import fmt_tick

BEST = "*"
PNG_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one per session, with its colour


def fmt_mse(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if v >= 0.1 else f"{v:.3g}"  # small values keep 3 significant digits


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


def overlay_png(histories: list[SessionHistory]) -> bytes:
    """The overlay (`overlay_figure`) as PNG bytes."""
    import matplotlib.pyplot as plt

    fig = overlay_figure(histories)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def overlay_figure(histories: list[SessionHistory]) -> Any:
    """Frozen MSE train and test against rows trained, one colour and one marker per
    session (told apart in grey print too), log y shared by both panels; each legend entry
    names the session's data, and the title says when they differ. Close it after use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, h in enumerate(histories):
        colour = colours[i % len(colours)]
        marker = PNG_MARKERS[i % len(PNG_MARKERS)]
        for ax, ys in zip(axes, (h.train, h.test), strict=True):
            if ys:
                ax.plot(
                    h.rows, ys, marker=marker, ls="-", color=colour, ms=4, lw=1.3, label=h.label
                )
    for ax, name in zip(axes, ("train set", "test set"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("rows trained")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_tick(v)))
        ax.set_title(f"frozen MSE (weights fixed), {name}")
        ax.grid(alpha=0.3, which="both")
    if len({h.data for h in histories}) > 1:
        fig.suptitle(
            "these sessions were evaluated on different data (see the legend): "
            "their curves do not rank them",
            fontsize=10,
            color="darkred",
        )
    axes[0].set_ylabel("frozen MSE (log scale)")
    handles, labels = axes[1].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, max(1, len(labels))), fontsize=8)
    rows_of_legend = (len(labels) + 2) // 3
    fig.tight_layout(rect=(0, 0.05 * rows_of_legend + 0.02, 1, 1))
    return fig


def cmd_compare(args: argparse.Namespace) -> int:
    root = sessions_dir(getattr(args, "sessions", None))
    png: Path | None = args.png
    if png is not None:
        check_out(png, "--png", "the PNG")  # before any session is read
    histories = load_histories(args.items, root)
    print(table_text(compare_table(histories)))
    if png is not None:
        try:
            atomic_write_bytes(png, overlay_png(histories))
        except OSError as exc:
            raise FreqtuiError(f"{png}: cannot write it ({exc.strerror or exc})") from None
        print(f"wrote {png}")
    return 0
