"""Truncated BPTT: rows streamed in time order, gradients through the last K rows.

The rows go through the model one at a time in time order (one nn.LSTM call per window
of K rows runs them step by step), the (h, c) state carried from row to row. After K rows
(or at the end of a frequency block) the loss over those rows is back-propagated through
all of them, the weights are updated, and the carried state is detached: gradients cross
up to K rows, never more, and memory stays bounded.

Options (`-O key=value`):

- `k` (int, default 200): rows per truncation window and per update;
- `reset` (`block` | `carry`, default `block`): zero the state at each frequency block's
  t = 0 (as frozen evaluation does) or carry it across blocks and epochs;
- `noise` (`train` | `fresh`, default `fresh`): train on the seed-1 rows every epoch, or
  draw a fresh S for every epoch from the spec's recipe with a generator of its own (never
  the test seed); training on one fixed noise draw memorises it;
- `noise_seed` (int, default 1000): seeds that generator.

A window is atomic: `train_rows(n)` trains whole windows, at least one, so that the
carried state between calls never holds autograd history and a snapshot resumes exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from engine.config import RunConfig
from engine.methods import TBPTT
from engine.model import FrequencyLSTM
from engine.signals import (
    SignalSet,
    fresh_signal_inputs,
    noise_generator,
    rng_state,
    set_rng_state,
)
from engine.training.base import Chunk, Trainer


class TbpttTrainer(Trainer):
    method = TBPTT.name  # its description, defaults and options: engine/methods.py
    OPTIONS: ClassVar[dict[str, Any]] = TBPTT.options

    def __init__(self, model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> None:
        super().__init__(model, config, train)
        o = {**self.OPTIONS, **config.options}
        self.k = int(o["k"])
        self.reset = str(o["reset"])
        self.noise = str(o["noise"])
        self.check_chunk = self.k  # the state is graph-free at every window boundary
        self.rng = noise_generator(int(o["noise_seed"]))
        self.targets = torch.from_numpy(np.array(train.targets, dtype=np.float32))  # (F, N)
        self.t = train.t
        self.S = torch.from_numpy(np.array(train.S, dtype=np.float32))
        self._last_x = torch.zeros(1, 1 + config.n_blocks)
        self._new_epoch_noise()
        self._stepper = self.fused_window()

    def prepare(self, emit) -> None:
        """Before the first row: compile (or load) the window kernel as a visible step."""
        super().prepare(emit)
        if self._stepper is not None:
            self.warm_up_window(self._stepper, emit)

    # ---- the contract ---------------------------------------------------------------
    @property
    def last_input(self) -> torch.Tensor:
        return self._last_x

    def on_epoch_start(self) -> None:
        if self.reset == "block":
            self.h, self.c = self.model.init_hidden(1)
        self._new_epoch_noise()

    def _new_epoch_noise(self) -> None:
        if self.noise == "fresh":
            self.S = torch.from_numpy(fresh_signal_inputs(self.rng, self.config))
        else:
            self.S = torch.from_numpy(np.array(self.train_signal.S, dtype=np.float32))

    def _window(self, row: int) -> tuple[int, int, int]:
        """(block, t0, length) of the window that starts at epoch row `row`."""
        N = self.config.n_samples
        block, t0 = divmod(row, N)
        return block, t0, min(self.k, N - t0)

    def train_rows(self, max_rows: int) -> Chunk:
        nb, N = self.config.n_blocks, self.config.n_samples
        loss_sum = np.zeros(nb)
        counts = np.zeros(nb, dtype=np.int64)
        live: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        done = 0
        block = min(nb - 1, self.row // N)
        while self.row < self.rows_per_epoch and (done == 0 or done < max_rows):
            block, t0, n = self._window(self.row)
            if done and done + n > max_rows:
                break
            if t0 == 0 and self.reset == "block":
                self.h, self.c = self.model.init_hidden(1)
            x = torch.zeros(1, n, 1 + nb)
            x[0, :, 0] = self.S[t0 : t0 + n]
            x[0, :, 1 + block] = 1.0
            y = self.targets[block, t0 : t0 + n]
            if self._stepper is not None:  # the same step, fused (kernels/window.py)
                r = self._stepper.step(
                    x, y.view(1, -1), np.ones(1), self.h[0], self.c[0], clip=self.config.clip
                )
                if not r.updated:
                    self.refuse_non_finite(float("nan"), self.row)
                h, c = r.h.unsqueeze(0), r.c.unsqueeze(0)
                loss, out = float(r.mse[0]) * n, np.asarray(r.outputs[0], dtype=np.float32)
            else:
                o, (h, c) = self.model(x, (self.h, self.c))
                err = (o[0, :, 0] - y) ** 2
                self._optimizer_step(err.mean(), self.row)
                loss, out = float(err.detach().sum()), o.detach()[0, :, 0].numpy()
            self.h, self.c = h.detach(), c.detach()  # the truncation: no graph past K rows
            self._last_x = x[0, -1:].clone()
            loss_sum[block] += loss
            counts[block] += n
            live.append((self.t[t0 : t0 + n], y.numpy(), out))
            self.row += n
            done += n
        rows = tuple(np.concatenate(a) for a in zip(*live, strict=True)) if live else None
        return Chunk.of(loss_sum, counts, block, rows)

    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        d["noise_rng"] = rng_state(self.rng)
        d["S"] = self.S.clone()
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        set_rng_state(self.rng, d["noise_rng"])
        self.S = d["S"].clone()
