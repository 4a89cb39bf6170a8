"""`freqtui report`: the spec's Graph 1 and Graph 2 as PNG files, plus metrics.json.

Everything shown is frozen MSE (weights fixed, rows in order from a zero state), the same
numbers `freqtui eval --json` prints for the same file. matplotlib lives here, not in
engine/, because a figure is presentation.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from engine.errors import FreqtuiError
from engine.evaluation import FrozenEval, evaluate
from engine.files import atomic_write_bytes, model_from, read_file, weights_note
from engine.signals import SignalSet, test_set
from freqtui.format import eval_json

GRAPH1 = "graph1_test_f2.png"
GRAPH2 = "graph2_test_all_frequencies.png"
METRICS = "metrics.json"


def write_report(path: Path, out: Path) -> list[Path]:
    """Read a snapshot or weights file, evaluate it frozen, and write the three files.
    The file is read and checked before anything is written."""
    obj = read_file(path)
    config, model = obj["config"], model_from(path, obj)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FreqtuiError(f"{out}: exists and is not a folder")
    result = evaluate(model, config)
    test = test_set(config)
    figures = {GRAPH1: graph1(test, result), GRAPH2: graph2(test, result)}
    metrics = eval_json(path, config, result, weights_note(obj))
    written = []
    try:
        for name, data in figures.items():
            atomic_write_bytes(out / name, data)
            written.append(out / name)
        atomic_write_bytes(out / METRICS, (json.dumps(metrics, indent=2) + "\n").encode())
        written.append(out / METRICS)
    except OSError as exc:
        raise FreqtuiError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return written


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _figure().close(fig)
    return buf.getvalue()


def _plot_block(ax, test: SignalSet, outputs: np.ndarray, i: int, *, background: bool) -> None:
    t = test.t
    if background:
        ax.plot(t, test.S, color="0.6", lw=0.5, alpha=0.35, label="S (mixed input)", zorder=1)
    ax.plot(t, test.targets[i], color="tab:blue", lw=1.4, label="target", zorder=2)
    ax.plot(
        t,
        outputs[i],
        ".",
        color="tab:red",
        ms=1.6,
        alpha=0.7,
        label="model output (frozen weights)",
        zorder=3,
    )
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


def graph2(test: SignalSet, result: FrozenEval) -> bytes:
    """Graph 2 (SPEC §3): one panel per frequency, test set, target vs output."""
    plt = _figure()
    n = test.n_blocks
    fig, axes = plt.subplots(n, 1, figsize=(12, 2.3 * n + 0.8), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        _plot_block(ax, test, result.test_outputs, i, background=False)
        ax.set_title(
            f"f{i + 1} = {test.frequencies[i]:g} Hz: frozen MSE test "
            f"{result.test.per_block[i]:.4f}, train {result.train.per_block[i]:.4f}",
            fontsize=9,
        )
        ax.set_ylabel("amplitude")
    axes[-1, 0].set_xlabel("t (s)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, markerscale=6, fontsize=8)
    fig.suptitle("Graph 2 - test set, every frequency: target vs model output (frozen weights)")
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    return _png(fig)
