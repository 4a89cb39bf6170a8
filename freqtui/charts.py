"""Every matplotlib figure freqtui draws, as PNG bytes (or a figure, for the tests):
the report's Graph 1, Graph 2 and oscillator diagnostics (`freqtui report`), the
comparison's overlaid frozen-MSE histories (`freqtui compare --png`) and a sweep's frozen
MSE against each swept value (`freqtui sweep`). matplotlib loads when a figure is drawn,
never at import, and draws into files only (the Agg backend), never a window.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from freqtui.text import fmt_tick

if TYPE_CHECKING:  # torch loads with the evaluation, where a report is drawn
    from engine.evaluation import FrozenEval
    from engine.signals import SignalSet
    from engine.store.compare import SessionHistory

# the report's pages (Graph 2's second page names the first in its title)
GRAPH1 = "graph1_test_f2.png"
GRAPH2 = "graph2_test_all_frequencies.png"
GRAPH2_ZOOM = "graph2_test_first_second.png"  # the second page: 5 and 7 Hz readable
DIAGNOSTICS = "diagnostics_test_oscillator.png"
COLORS = ("tab:red", "tab:green", "tab:blue", "tab:purple", "tab:orange", "tab:brown")
# each frequency's curve has a marker and a line style of its own as well as a colour
MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (1, 1)))
MARKS_PER_CURVE = 16  # markers on each curve (not on every point: they would hide it)
ZOOM_S = 1.0  # the second page of Graph 2: the first second, where 5 and 7 Hz can be read
PNG_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # compare: one per session, with its colour


# ---- the report (SPEC §3) ----------------------------------------------------------------
def _duration(test: SignalSet) -> float:
    """The signal's real length in seconds (N samples at fs)."""
    dt = float(test.t[1] - test.t[0]) if test.n_samples > 1 else 1.0
    return round(test.n_samples * dt, 9)


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _png(fig, dpi: int = 110) -> bytes:
    """The figure as PNG bytes, then closed (pyplot keeps every open figure)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    _figure().close(fig)
    return buf.getvalue()


def _plot_block(
    ax, test: SignalSet, outputs: np.ndarray, i: int, *, background: bool, n: int | None = None
) -> None:
    """Target as a line drawn over the output's small translucent dots; S (if asked) as a
    faint background under both. `n`: only the first n samples."""
    n = test.n_samples if n is None else n
    t = test.t[:n]
    if background:
        ax.plot(
            t, test.S[:n], ".", color="0.55", ms=1.0, alpha=0.12, label="S (mixed input)", zorder=1
        )
    ax.plot(
        t,
        outputs[i, :n],
        ".",
        color="tab:red",
        ms=1.2 if n > 2000 else 2.0,
        alpha=0.35,
        label="model output (frozen weights)",
        zorder=2,
    )
    ax.plot(t, test.targets[i, :n], color="tab:blue", lw=1.3, label="target", zorder=3)
    ax.set_xlim(t[0], t[-1])
    ax.grid(alpha=0.25)


def graph1(test: SignalSet, result: FrozenEval) -> bytes:
    """Graph 1 (SPEC §3): test set, f2: target as a line, output as dots, S faint behind."""
    plt = _figure()
    i = 1 if test.n_blocks > 1 else 0
    f = test.frequencies[i]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    _plot_block(ax, test, result.test_outputs, i, background=True)
    ax.set_title(
        f"Graph 1 - test set, f{i + 1} = {f:g} Hz: frozen MSE {result.test.per_block[i]:.4f} "
        f"(test overall {result.test.overall:.4f}, train overall {result.train.overall:.4f})"
    )
    ax.set_xlabel("t (s)")
    ax.set_ylabel("amplitude")
    _legend(ax)
    fig.tight_layout()
    return _png(fig)


def _legend(ax) -> None:
    """One row under the plot, where it hides no data; the faint S made visible in it."""
    leg = ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, markerscale=6, fontsize=8
    )
    for handle in leg.legend_handles:
        handle.set_alpha(1.0)


def graph2_title(duration: float, seconds: float | None = None) -> str:
    """Graph 2's title from the signal's real duration: the whole of it, or its first
    `seconds`; a signal no longer than those makes the second page the same as the first,
    and the title says so."""
    head = "Graph 2 - test set, every frequency: target vs model output (frozen weights)"
    if seconds is None:
        return f"{head}, the whole {duration:g} s"
    if seconds < duration:
        return f"{head}, first {seconds:g} s (the whole {duration:g} s on {GRAPH2})"
    return (
        f"{head}, the whole {duration:g} s\n(the signal is no longer than {seconds:g} s: "
        f"this page is the same as {GRAPH2})"
    )


def graph2(test: SignalSet, result: FrozenEval, seconds: float | None = None) -> bytes:
    return _png(graph2_figure(test, result, seconds))


def graph2_figure(test: SignalSet, result: FrozenEval, seconds: float | None = None):
    """Graph 2 (SPEC §3): one panel per frequency, test set, target vs output; with
    `seconds`, only the first ones (the second page, where 5 and 7 Hz can be read)."""
    plt = _figure()
    n = test.n_blocks
    samples = None
    if seconds is not None:
        samples = max(2, min(test.n_samples, int(round(seconds / (test.t[1] - test.t[0])))))
    fig, axes = plt.subplots(n, 1, figsize=(12, 2.3 * n + 0.8), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        _plot_block(ax, test, result.test_outputs, i, background=False, n=samples)
        ax.set_title(
            f"f{i + 1} = {test.frequencies[i]:g} Hz: frozen MSE test "
            f"{result.test.per_block[i]:.4f}, train {result.train.per_block[i]:.4f}",
            fontsize=9,
        )
        ax.set_ylabel("amplitude")
    axes[-1, 0].set_xlabel("t (s)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, markerscale=6, fontsize=8)
    duration = _duration(test)
    fig.suptitle(graph2_title(duration, seconds), fontsize=10)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    return fig


def diagnostics(test: SignalSet, result: FrozenEval) -> bytes:
    return _png(diagnostics_figure(test, result))


def diagnostics_figure(test: SignalSet, result: FrozenEval):
    """The oscillator's diagnostics on the test set, per frequency over time t: the frozen
    squared error, and the phase and amplitude of the output against the target's
    (sliding-window projection on sin/cos, engine.evaluation.oscillator_diagnostics)."""
    from engine.evaluation import oscillator_diagnostics

    plt = _figure()
    d = oscillator_diagnostics(result.test_outputs, test, points=400)
    fig, axes = plt.subplots(3, 1, figsize=(12, 8.5), sharex=True)
    rows = (
        (d.squared_error, "squared error\n(frozen, window mean)"),
        (d.phase_error_deg, "phase error (degrees)\noutput minus target"),
        (d.amplitude_error, "amplitude error\noutput minus 1"),
    )
    duration = _duration(test)
    for ax, (values, label) in zip(axes, rows, strict=True):
        for i, f in enumerate(test.frequencies):
            mse = result.test.per_block[i]
            name = f"f{i + 1} = {f:g} Hz (frozen MSE {mse:.4f})"
            t, v = d.t[i], values[i]
            if np.ptp(t) == 0:
                # its window (whole periods, at least 0.2 s) is the whole signal: one
                # value, drawn as one marker and said so, not a curve of no length
                t, v = t[:1], v[:1]
                name += f": one window, the whole {duration:g} s"
            ax.plot(
                t,
                v,
                color=COLORS[i % len(COLORS)],
                ls=LINESTYLES[i % len(LINESTYLES)],
                marker=MARKERS[i % len(MARKERS)],
                markevery=max(1, len(t) // MARKS_PER_CURVE),
                ms=4,
                lw=1.1,
                label=name,
            )
        ax.set_ylabel(label, fontsize=9)
        ax.grid(alpha=0.25)
    axes[0].set_yscale("log")
    axes[0].axhline(0.5, color="0.4", ls="--", lw=0.8)
    axes[0].annotate(
        "0.5: predicting zero",
        (0.005, 0.5),
        xycoords=("axes fraction", "data"),
        va="bottom",
        fontsize=8,
        color="0.3",
    )
    # symmetric about 0, at least ±5 degrees: a clock's small drift is what matters
    r = min(180.0, max(5.0, 1.15 * float(np.nanmax(np.abs(d.phase_error_deg)))))
    axes[1].set_ylim(-r, r)
    axes[1].axhline(0, color="0.4", lw=0.6)
    axes[2].axhline(0, color="0.4", lw=0.6)
    axes[-1].set_xlabel("t (s)")
    axes[-1].set_xlim(0, test.t[-1])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(
        "Oscillator diagnostics - test set, frozen weights: where each clock drifts or fades "
        "(windows of whole periods, at least 0.2 s)"
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


# ---- the comparison's overlay -------------------------------------------------------------
def overlay_png(histories: list[SessionHistory]) -> bytes:
    """The overlay (`overlay_figure`) as PNG bytes."""
    return _png(overlay_figure(histories), dpi=100)


def overlay_figure(histories: list[SessionHistory]) -> Any:
    """Frozen MSE train and test against rows trained, one colour and one marker per
    session (told apart in grey print too), log y shared by both panels; each legend entry
    names the session's data, and the title says when they differ. Close it after use."""
    plt = _figure()
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


# ---- a sweep's results ---------------------------------------------------------------------
def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def sweep_png(data: dict[str, Any]) -> bytes:
    """A sweep's results (engine/sweep/results.py): frozen MSE_test (overall) against each
    swept value, one line per method (and per combination of the other swept values),
    median line and min-max band over seeds."""
    plt = _figure()

    keys = [k for k in data["grid"] if k != "method"] or list(data["grid"]) or ["method"]
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4.8), squeeze=False)
    groups = [g for g in data["groups"] if g["frozen_mse_test"]]
    for ax, key in zip(axes[0], keys, strict=True):
        values = data["grid"].get(key) or sorted({g["method"] for g in groups})
        numeric = all(_num(v) is not None for v in values)
        pos = {v: (_num(v) if numeric else i) for i, v in enumerate(values)}
        lines: dict[str, list[tuple[float, dict[str, float]]]] = {}
        for g in groups:
            x = g["values"].get(key, g["method"])
            others = [f"{k}={v}" for k, v in g["values"].items() if k not in (key, "method")]
            label = " ".join([g["method"], *others])
            lines.setdefault(label, []).append((pos[x], g["frozen_mse_test"]["overall"]))
        for label, pts in sorted(lines.items()):
            pts.sort(key=lambda p: p[0])
            xs = [p[0] for p in pts]
            (line,) = ax.plot(xs, [p[1]["median"] for p in pts], "o-", label=label)
            ax.fill_between(
                xs,
                [p[1]["min"] for p in pts],
                [p[1]["max"] for p in pts],
                color=line.get_color(),
                alpha=0.2,
            )
        ax.set_yscale("log")
        positive = numeric and all(v > 0 for v in pos.values())
        if positive and max(pos.values()) / min(pos.values()) >= 20:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(list(pos.values()), list(pos))
        ax.set_xlabel(key)
        ax.set_ylabel("frozen MSE_test (log scale)")
        ax.set_title(f"frozen MSE_test vs {key}: median, band = min-max over seeds", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        if lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"sweep {data['sweep']}")
    fig.tight_layout()
    return _png(fig, dpi=100)
