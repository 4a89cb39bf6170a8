"""A run's metric history, and the typed record of one frozen evaluation that events,
snapshots, the session list and the console's widgets share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.evaluation import FrozenMSE


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
    evals: list[EvalRecord] = field(default_factory=list)
    # (epoch, mean online loss, per-block means; None for a block without rows), per epoch
    epochs: list[tuple[int, float, tuple[float | None, ...]]] = field(default_factory=list)
    rows_total: int = 0
    train_seconds: float = 0.0
    max_points: int = 4000
    _stride: int = 1
    _skip: int = 0

    def add_online(self, rows_total: int, block: int, loss: float) -> None:
        self._skip += 1
        if self._skip < self._stride:
            return
        self._skip = 0
        self.online.append((rows_total, block, loss))
        if len(self.online) > self.max_points:  # thin: keep every other point, log twice as rarely
            self.online = self.online[::2]
            self._stride *= 2

    def add_eval(self, record: EvalRecord) -> None:
        self.evals.append(record)

    def add_epoch(self, epoch: int, online: float, by_block: tuple[float | None, ...]) -> None:
        self.epochs.append((epoch, online, tuple(by_block)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "online": [list(p) for p in self.online],
            "evals": [e.to_dict() for e in self.evals],
            "epochs": [
                {"epoch": e, "online": o, "online_by_block": list(b)} for e, o, b in self.epochs
            ],
            "rows_total": self.rows_total,
            "train_seconds": self.train_seconds,
            "stride": self._stride,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        h = cls(
            online=[(int(a), int(b), float(c)) for a, b, c in d.get("online", [])],
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
