"""A run's metric history, and the typed records of a frozen evaluation that events,
snapshots, the session list and the console's widgets share. Plain data, torch-free: the
export (engine/export.py) and the session list read it without loading torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MAX_SCHEDULE = 10_000  # schedule changes kept (a clock run makes a few hundred)


@dataclass(frozen=True)
class FrozenMSE:
    """Frozen MSE of one set: overall (all rows) and per frequency block."""

    overall: float
    per_block: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"overall": self.overall, "per_frequency": list(self.per_block)}

    @classmethod
    def from_dict(cls, d: dict) -> FrozenMSE:
        return cls(float(d["overall"]), tuple(float(v) for v in d["per_frequency"]))


@dataclass(frozen=True)
class EvalRecord:
    """One frozen evaluation (weights fixed): where it was taken and its MSE on both sets.
    In snapshots as `{"epoch", "row", "rows_total", "train": {...}, "test": {...}}`."""

    epoch: int  # 1-based epoch being trained
    row: int  # rows done in that epoch
    rows_total: int  # rows trained since the run began
    train: FrozenMSE
    test: FrozenMSE

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "row": self.row,
            "rows_total": self.rows_total,
            "train": self.train.to_dict(),
            "test": self.test.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalRecord:
        return cls(
            epoch=int(d["epoch"]),
            row=int(d["row"]),
            rows_total=int(d.get("rows_total", 0)),
            train=FrozenMSE.from_dict(d["train"]),
            test=FrozenMSE.from_dict(d["test"]),
        )


@dataclass
class History:
    """A run's metric history, kept in snapshots so a resumed run redraws its past.

    `online` is the smoothed online loss (weights moving), thinned as it grows; `evals`
    holds every frozen evaluation (weights fixed). The two are never mixed.
    """

    online: list[tuple[int, int, float]] = field(default_factory=list)  # (rows_total, block, loss)
    # the smoothed online loss of each frequency block at each point of `online` (None for
    # a block not trained yet); empty in snapshots written before it was kept
    online_by_block: list[tuple[float | None, ...]] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    # the method's schedule at each change (a clock's phase, horizon, restarts):
    # (rows_total, epoch, row, ((label, value), ...)), oldest first, at most MAX_SCHEDULE
    schedule: list[tuple[int, int, int, tuple[tuple[str, str], ...]]] = field(default_factory=list)
    # (epoch, mean online loss, per-block means; None for a block without rows), per epoch
    epochs: list[tuple[int, float, tuple[float | None, ...]]] = field(default_factory=list)
    rows_total: int = 0
    train_seconds: float = 0.0
    max_points: int = 4000
    _stride: int = 1
    _skip: int = 0

    def add_online(
        self,
        rows_total: int,
        block: int,
        loss: float,
        by_block: tuple[float | None, ...] | None = None,
    ) -> None:
        self._skip += 1
        if self._skip < self._stride:
            return
        self._skip = 0
        if by_block is not None and len(self.online_by_block) == len(self.online):
            self.online_by_block.append(tuple(by_block))
        self.online.append((rows_total, block, loss))
        if len(self.online) > self.max_points:  # thin: keep every other point, log twice as rarely
            self.online = self.online[::2]
            self.online_by_block = self.online_by_block[::2]
            self._stride *= 2

    def add_schedule(
        self, rows_total: int, epoch: int, row: int, schedule: tuple[tuple[str, str], ...]
    ) -> None:
        """A change of the method's schedule; the newest MAX_SCHEDULE are kept."""
        self.schedule.append((rows_total, epoch, row, tuple(schedule)))
        if len(self.schedule) > MAX_SCHEDULE:
            del self.schedule[: len(self.schedule) - MAX_SCHEDULE]

    def add_eval(self, record: EvalRecord) -> None:
        self.evals.append(record)

    def add_epoch(self, epoch: int, online: float, by_block: tuple[float | None, ...]) -> None:
        self.epochs.append((epoch, online, tuple(by_block)))

    def copy(self) -> History:
        """A copy that later additions leave alone (its points and records are immutable)."""
        return dataclasses.replace(
            self,
            online=list(self.online),
            online_by_block=list(self.online_by_block),
            evals=list(self.evals),
            schedule=list(self.schedule),
            epochs=list(self.epochs),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "online": [list(p) for p in self.online],
            "online_by_block": [list(b) for b in self.online_by_block],
            "evals": [e.to_dict() for e in self.evals],
            "schedule": [
                {"rows_total": r, "epoch": e, "row": w, "schedule": [list(p) for p in pairs]}
                for r, e, w, pairs in self.schedule
            ],
            "epochs": [
                {"epoch": e, "online": o, "online_by_block": list(b)} for e, o, b in self.epochs
            ],
            "rows_total": self.rows_total,
            "train_seconds": self.train_seconds,
            "stride": self._stride,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        online = [(int(a), int(b), float(c)) for a, b, c in d.get("online", [])]
        by_block = [
            tuple(None if v is None else float(v) for v in b) for b in d.get("online_by_block", [])
        ]
        h = cls(
            online=online,
            # kept only when it matches the points one for one (thinned together)
            online_by_block=by_block if len(by_block) == len(online) else [],
            schedule=[
                (
                    int(s["rows_total"]),
                    int(s["epoch"]),
                    int(s["row"]),
                    tuple((str(a), str(b)) for a, b in s["schedule"]),
                )
                for s in d.get("schedule", [])
            ],
            evals=[EvalRecord.from_dict(e) for e in d.get("evals", [])],
            epochs=[
                (
                    int(e["epoch"]),
                    float(e["online"]),
                    tuple(None if v is None else float(v) for v in e["online_by_block"]),
                )
                for e in d.get("epochs", [])
            ],
            rows_total=int(d.get("rows_total", 0)),
            train_seconds=float(d.get("train_seconds", 0.0)),
        )
        h._stride = int(d.get("stride", 1))
        return h
