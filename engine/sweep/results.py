"""A sweep's results: every cell's latest frozen MSE and, per combination of the grid's
values, min / median / max / mean / std of frozen MSE_test over the finished seeds (the
content of results.json; the console prints it as a table and draws it)."""

from __future__ import annotations

import json
import statistics
from typing import Any

from engine.sweep.state import CellState


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def results(sid: str, grid: dict[str, list[str]], seeds: list[int], states: list[CellState]):
    """results.json's content: every cell's latest frozen MSE and, per grid combination,
    min / median / max / mean / std of frozen MSE_test over the finished seeds."""
    cells = []
    groups: dict[str, dict[str, Any]] = {}
    for s in states:
        last = s.last_eval
        freqs = list(s.cell.config.frequencies)
        cells.append(
            {
                "cell": s.cell.name,
                "values": s.cell.values,
                "seed": s.cell.seed,
                "method": s.cell.config.method,
                "session": str(s.folder),
                "finished": s.finished,
                "rows_total": s.rows_total,
                "train_seconds": s.train_seconds,
                "frozen_mse_train": last.train.to_dict() if last else None,
                "frozen_mse_test": last.test.to_dict() if last else None,
            }
        )
        key = json.dumps(s.cell.values, sort_keys=False)
        g = groups.setdefault(
            key,
            {
                "values": s.cell.values,
                "method": s.cell.config.method,
                "frequencies": freqs,
                "seeds": [],
                "_tests": [],
            },
        )
        if s.finished and last:
            g["seeds"].append(s.cell.seed)
            g["_tests"].append([last.test.overall, *last.test.per_block])
    out_groups = []
    for g in groups.values():
        tests = g.pop("_tests")
        labels = ["overall"] + [f"f={f:g} Hz" for f in g["frequencies"]]
        g["frozen_mse_test"] = (
            {label: _stats([t[i] for t in tests]) for i, label in enumerate(labels)}
            if tests
            else None
        )
        out_groups.append(g)
    return {
        "sweep": sid,
        "kind": "frozen_mse",
        "grid": grid,
        "seeds": seeds,
        "cells": cells,
        "groups": out_groups,
    }
