"""The hand-off's trainer (SPEC §2): L = 1, batch 1, rows in order, state detached every row.

The (h, c) state is carried across all rows of an epoch and detached after every
backward/step, so no gradient ever crosses a row. Its online loss falls while its frozen
MSE stays near 0.5 (SPEC §4): it is here as the documented baseline.

Two backends do the same arithmetic: `torch` is the readable reference below; `fused`
runs a block of rows per call through a compiled kernel (engine/training/kernels/handoff.py)
that writes the model's parameters and this trainer's torch Adam state in place.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine import events as ev
from engine.config import RunConfig
from engine.methods import HANDOFF
from engine.model import FrequencyLSTM
from engine.signals import SignalSet
from engine.training.base import LIVE_ROWS, Chunk, Trainer
from engine.training.kernels import handoff as fused_kernel


class HandoffTrainer(Trainer):
    method = HANDOFF.name  # its description and defaults: engine/methods.py

    def __init__(self, model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> None:
        super().__init__(model, config, train)
        X, y = train.rows()
        self.x = torch.from_numpy(X)  # (rows, 1 + F)
        self.y = torch.from_numpy(y)  # (rows,)
        self.t = np.tile(train.t, train.n_blocks)
        self._fused: fused_kernel.FusedStepper | None = None
        if config.backend == "fused":
            try:
                self._fused = fused_kernel.FusedStepper(model, self.optimizer, config.clip)
                self.backend = "fused"
            except fused_kernel.FusedUnavailableError as exc:
                self.backend_note = f"fused backend unavailable ({exc}); training with torch"

    def prepare(self, emit) -> None:
        """Before the first row: compile (or load) the fused kernel as a visible step."""
        super().prepare(emit)
        if self._fused is None:
            return
        if not fused_kernel.is_compiled():
            emit(ev.Compiling("fused", done=False))
        info = fused_kernel.warm_up()
        emit(ev.Compiling("fused", done=True, seconds=info.seconds, cached=info.from_cache))

    @property
    def last_input(self) -> torch.Tensor:
        return self.x[max(0, self.row - 1)].view(1, -1)

    def on_epoch_start(self) -> None:
        self.h, self.c = self.model.init_hidden(1)

    def train_rows(self, max_rows: int) -> Chunk:
        start = self.row
        n = max(0, min(max_rows, self.rows_per_epoch - start))
        if self._fused is not None:
            losses, outputs = self._train_fused(start, n)
        else:
            losses, outputs = self._train_torch(start, n)
        self.row = start + n
        return self._chunk(start, losses, outputs)

    def _train_torch(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        losses = np.empty(n)
        outputs = np.empty(n)
        for k in range(n):
            r = start + k
            self.row = r  # where a divergence leaves the position
            out, (h, c) = self.model(self.x[r].view(1, 1, -1), (self.h, self.c))
            losses[k] = self._optimizer_step(F.mse_loss(out.view(1), self.y[r : r + 1]), r)
            self.h, self.c = self._detach(h), self._detach(c)
            outputs[k] = out.item()
        return losses, outputs

    def _train_fused(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        # the same rows and the same step as _train_torch, n rows per compiled call;
        # self.h and self.c are overwritten in place with the state after the last row
        rows = slice(start, start + n)
        block = self._fused.train_block(self.x.numpy()[rows], self.y.numpy()[rows], self.h, self.c)
        if block.diverged:
            self.row = start + block.rows
            self.refuse_non_finite(float(block.losses[block.rows]), self.row)
        return block.losses, block.outputs

    @staticmethod
    def _detach(t: torch.Tensor) -> torch.Tensor:
        # the hand-off's critical line: without it the graph grows with every row
        return t.detach()

    def _chunk(self, start: int, losses: np.ndarray, outputs: np.ndarray) -> Chunk:
        nb = self.train_signal.n_blocks
        N = self.train_signal.n_samples
        rows = np.arange(start, start + len(losses))
        blocks = rows // N
        loss_sum = np.bincount(blocks, weights=losses, minlength=nb)[:nb]
        counts = np.bincount(blocks, minlength=nb)[:nb]
        block = int(blocks[-1]) if len(rows) else min(nb - 1, start // N)
        live = rows[-LIVE_ROWS:]
        return Chunk.of(
            loss_sum, counts, block, (self.t[live], self.y.numpy()[live], outputs[-LIVE_ROWS:])
        )
