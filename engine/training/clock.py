"""Clock: full BPTT through windows that start at t = 0, over a horizon that grows.

Under the task as written S carries no information about the target (SPEC §4.1): the only
way below MSE 0.5 is for the LSTM state, started from zero at t = 0, to run as an
oscillator keyed by C. This method trains exactly that, streaming rows in time order with
the state carried:

- every step runs the F frequency blocks (times `draws` fresh noise draws once S is fed)
  as a batch of streams from a zero (h, c) at t = 0 through the first T rows, and
  back-propagates the mean squared error over all of them (full BPTT, no truncation);
- the horizon T starts at `t0` rows and grows by `grow` whenever the smoothed loss over
  the horizon falls below `thr` (after at least `min_steps` steps at that horizon), until
  it covers the whole block; the learning rate scales as lr·(t0/T)^lr_pow;
- a curriculum on the amplitude of the S fed to the model: it starts at `amp0` and rises
  by `amp_step` whenever the full-horizon loss is below `thr`, up to 1 (the task as
  written); S is always drawn fresh by the spec's recipe from a generator of its own,
  never from the test seed;
- a small L2 penalty `s_decay` on the input weights of the S column (a generic
  regulariser: it only shrinks weights that the loss does not need);
- block weighting: each block's loss is weighted by its own loss to the power
  `block_weight`, so the lagging block gets the push;
- once the curriculum is done (T covers the block, S at full amplitude), the learning
  rate falls linearly to 0 at the end of the run (`anneal=1`; 0 keeps it constant), so
  the final weights are not caught mid-bounce;
- the forget-gate bias is raised by `forget_bias` before the first step of a fresh run
  (a generic LSTM recipe).

One step trains F·draws·T rows; an epoch is `epoch_sets` times the rows of one set
(F·N: 40,000 for the spec's task), and the run evaluates frozen MSE at every epoch's end. The state is zero at the
start of every window, so it never holds autograd history between calls.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import numpy as np
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.model import FrequencyLSTM
from engine.signals import (
    SignalSet,
    fresh_signal_inputs,
    noise_generator,
    rng_state,
    set_rng_state,
)
from engine.training.base import LIVE_ROWS, Chunk, Trainer

EMA = 0.9  # smoothing of the per-block loss that gates the curriculum


class ClockTrainer(Trainer):
    method = "clock"
    description = "full BPTT from t=0 over a growing horizon, S-amplitude curriculum, fresh noise"
    DEFAULTS: ClassVar[dict[str, Any]] = {"lr": 3e-3, "clip": 1.0, "epochs": 20}
    OPTIONS: ClassVar[dict[str, Any]] = {
        "t0": 1000,
        "grow": 1.5,
        "thr": 0.04,
        "min_steps": 30,
        "lr_pow": 1.0,
        "draws": 2,
        "amp0": 0.0,
        "amp_step": 0.1,
        "s_decay": 1e-3,
        "block_weight": 1.0,
        "forget_bias": 1.0,
        "noise_seed": 1000,
        "epoch_sets": 50,
        "anneal": 1,
    }
    state_batch = "blocks"  # one carried stream per frequency block
    blocks_together = True  # every step runs all the blocks as one batch
    schedule_live = ("lr",)  # annealed continuously at the end of a run
    INTS = ("t0", "min_steps", "draws", "noise_seed", "epoch_sets", "anneal")

    def __init__(self, model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> None:
        super().__init__(model, config, train)
        o = self.options(config)
        self.o = o
        N = config.n_samples
        self.targets = torch.from_numpy(np.array(train.targets, dtype=np.float32))  # (F, N)
        self.t = train.t
        self.rng = noise_generator(o["noise_seed"])
        self.horizon = min(N, o["t0"])
        self.amp = float(o["amp0"])
        self.ema: np.ndarray | None = None
        self.steps_here = 0  # steps since the curriculum last moved
        self.done_at: int | None = None  # run position (rows) when the curriculum finished
        self.steps = 0
        self.initialised = False  # the forget-bias recipe is applied before the first step
        self._last_x = torch.zeros(config.n_blocks, 1 + config.n_blocks)
        self._set_lr()

    # ---- options ----------------------------------------------------------------------
    @classmethod
    def options(cls, config: RunConfig) -> dict[str, Any]:
        o = {**cls.OPTIONS, **config.options}
        out: dict[str, Any] = {}
        for k, v in o.items():
            try:
                out[k] = int(v) if k in cls.INTS else float(v)
            except (TypeError, ValueError) as exc:
                raise FreqtuiError(f"clock option {k} must be a number, got {v!r}") from exc
        return out

    @classmethod
    def validate_options(cls, config: RunConfig) -> None:
        super().validate_options(config)  # option names
        o = cls.options(config)
        for k in ("t0", "min_steps", "draws", "epoch_sets"):
            if o[k] < 1:
                raise FreqtuiError(f"clock option {k} must be >= 1, got {o[k]}")
        if o["anneal"] not in (0, 1):
            raise FreqtuiError(f"clock option anneal must be 0 or 1, got {o['anneal']}")
        if o["grow"] <= 1:
            raise FreqtuiError(f"clock option grow must be > 1, got {o['grow']}")
        if not 0 <= o["amp0"] <= 1:
            raise FreqtuiError(f"clock option amp0 must be in [0, 1], got {o['amp0']}")
        for k in ("thr", "amp_step", "s_decay", "block_weight", "lr_pow", "noise_seed"):
            if not math.isfinite(o[k]) or o[k] < 0:
                raise FreqtuiError(f"clock option {k} must be >= 0, got {o[k]}")
        if o["amp_step"] <= 0:
            raise FreqtuiError("clock option amp_step must be > 0")

    # ---- the contract ---------------------------------------------------------------
    @property
    def rows_per_epoch(self) -> int:
        return int(self.o["epoch_sets"]) * self.config.rows_per_set

    @property
    def last_input(self) -> torch.Tensor:
        return self._last_x

    @property
    def curriculum_done(self) -> bool:
        return self.horizon >= self.config.n_samples and self.amp >= 1.0

    def state_check(self, rows: int = 300):
        # one step trains F·draws·T rows and builds a T-step graph: warm the allocator's
        # pools with a few steps on a copy first, so that they are not taken for a leak,
        # then run the shared check over several more steps (on a copy of that copy)
        probe = copy.deepcopy(self)
        for _ in range(3):
            probe.step()
        F, D = self.config.n_blocks, self.o["draws"]
        return Trainer.state_check(probe, max(rows, 5 * F * D * probe.horizon))

    def schedule(self) -> tuple[tuple[str, str], ...]:
        """Horizon, S amplitude, learning rate (as the optimizer holds it) and, when the
        trainer keeps one, its validation MSE."""
        items = [
            ("horizon", f"{self.horizon:,} rows"),
            ("S amplitude", f"{self.amp:.2g}"),
            ("lr", f"{self.optimizer.param_groups[0]['lr']:.2e}"),
        ]
        validation = getattr(self, "validation_mse", None)
        if validation is not None:
            items.append(("validation MSE", f"{validation:.4f}"))
        return tuple(items)

    def length_change_note(self, old_epochs: int, new_epochs: int) -> str:
        if not self.o["anneal"]:
            return ""
        if self.done_at is None:
            return (
                f"the final learning-rate anneal (from the end of the curriculum to 0) will "
                f"end with epoch {new_epochs} instead of {old_epochs}"
            )
        now = self._lr_at(old_epochs)
        # the anneal is linear from where the curriculum finished to the run's end: a new
        # end moves the whole remaining ramp, so the rate jumps at the first step
        then = self._lr_at(new_epochs)
        return (
            f"the final learning-rate anneal is under way: it now ends with epoch "
            f"{new_epochs} instead of {old_epochs}, so the learning rate jumps from "
            f"{now:.2e} to {then:.2e} and falls to 0 over the new length (a run of "
            f"{new_epochs} epochs from the start would not follow this trajectory)"
        )

    def _lr_at(self, epochs: int) -> float:
        """The learning rate `_set_lr` gives at the current position for a run of `epochs`."""
        lr = self.config.lr * (min(self.o["t0"], self.horizon) / self.horizon) ** self.o["lr_pow"]
        if self.o["anneal"] and self.done_at is not None:
            end = epochs * self.rows_per_epoch
            lr *= max(0, end - self.position) / max(1, end - self.done_at)
        return lr

    @property
    def position(self) -> int:
        """Rows trained since the run began (epochs x rows_per_epoch + row)."""
        return self.epoch * self.rows_per_epoch + self.row

    def _set_lr(self) -> None:
        lr = self.config.lr * (min(self.o["t0"], self.horizon) / self.horizon) ** self.o["lr_pow"]
        if self.o["anneal"] and self.done_at is not None:
            # once the curriculum is done, the rate falls linearly to 0 at the run's end
            end = self.config.epochs * self.rows_per_epoch
            left = max(0, end - self.position) / max(1, end - self.done_at)
            lr *= left
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def _init_weights(self) -> None:
        H = self.model.hidden_size
        with torch.no_grad():
            for name, p in self.model.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[H : 2 * H] += self.o["forget_bias"]
        self.initialised = True

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (F·D, T, 1+F) and targets (F·D, T): D noise draws, F blocks each."""
        F, T = self.config.n_blocks, self.horizon
        D = self.o["draws"] if self.amp > 0 else 1
        x = torch.zeros(D, F, T, 1 + F)
        for d in range(D):
            if self.amp > 0:
                S = fresh_signal_inputs(self.rng, self.config, T)
                x[d, :, :, 0] = torch.from_numpy(S) * self.amp
        for i in range(F):
            x[:, i, :, 1 + i] = 1.0
        y = self.targets[:, :T].unsqueeze(0).expand(D, F, T)
        return x.reshape(D * F, T, 1 + F), y.reshape(D * F, T)

    def step(self) -> tuple[np.ndarray, int, torch.Tensor, torch.Tensor]:
        """One curriculum step. Returns per-block mean loss, rows trained, output, target."""
        if not self.initialised:
            self._init_weights()
        F = self.config.n_blocks
        x, y = self._batch()
        out, (h, c) = self.model(x, self.model.init_hidden(x.shape[0]))
        err = (out[..., 0] - y) ** 2
        blk = err.mean(dim=1).view(-1, F).mean(dim=0)
        if self.o["block_weight"] > 0:
            w = (blk.detach() + 1e-4) ** self.o["block_weight"]
            loss = (w / w.mean() * blk).mean()
        else:
            loss = blk.mean()
        if self.o["s_decay"] > 0:
            loss = loss + self.o["s_decay"] * self.model.lstm.weight_ih_l0[:, 0].pow(2).sum()
        self._optimizer_step(loss, self.row)
        self.steps += 1
        self.h, self.c = h.detach()[:, :F], c.detach()[:, :F]
        self._last_x = x[:F, -1].clone()
        bl = blk.detach().numpy().astype(np.float64)
        self._advance(bl)
        return bl, x.shape[0] * x.shape[1], out.detach()[:F, :, 0], y[:F]

    def _advance(self, bl: np.ndarray) -> None:
        """Move the curriculum: grow the horizon first, then raise the S amplitude."""
        self.ema = bl.copy() if self.ema is None else EMA * self.ema + (1 - EMA) * bl
        self.steps_here += 1
        if self.steps_here < self.o["min_steps"] or float(self.ema.mean()) >= self.o["thr"]:
            return
        N = self.config.n_samples
        if self.horizon < N:
            self.horizon = min(N, int(self.horizon * self.o["grow"]))
            self._set_lr()
        elif self.amp < 1.0:
            self.amp = min(1.0, round(self.amp + self.o["amp_step"], 6))
            if self.amp >= 1.0:
                self.done_at = self.position
        else:
            return
        self.ema, self.steps_here = None, 0

    def train_rows(self, max_rows: int) -> Chunk:
        F = self.config.n_blocks
        loss_sum = np.zeros(F)
        counts = np.zeros(F, dtype=np.int64)
        done = 0
        block = 0
        live = (np.zeros(0), np.zeros(0), np.zeros(0))
        while self.row < self.rows_per_epoch and (done == 0 or done < max_rows):
            bl, rows, out, y = self.step()
            per_block = rows // F
            loss_sum += bl * per_block
            counts += per_block
            done += rows
            self.row = min(self.rows_per_epoch, self.row + rows)
            if self.done_at is not None:
                self._set_lr()
            block = self.steps % F  # the live plot shows the blocks in turn
            T = out.shape[1]
            keep = slice(max(0, T - LIVE_ROWS), T)
            live = (self.t[keep], y[block, keep].numpy(), out[block, keep].numpy())
        return Chunk.of(loss_sum, counts, block, live)

    # ---- snapshots ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        d.update(
            horizon=self.horizon,
            amp=self.amp,
            ema=None if self.ema is None else [float(v) for v in self.ema],
            steps_here=self.steps_here,
            done_at=-1 if self.done_at is None else self.done_at,
            steps=self.steps,
            initialised=self.initialised,
            noise_rng=rng_state(self.rng),
            last_x=self._last_x.clone(),
        )
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        self.horizon = int(d["horizon"])
        self.amp = float(d["amp"])
        self.ema = None if d["ema"] is None else np.array(d["ema"], dtype=np.float64)
        self.steps_here = int(d["steps_here"])
        self.done_at = None if int(d["done_at"]) < 0 else int(d["done_at"])
        self.steps = int(d["steps"])
        self.initialised = bool(d["initialised"])
        set_rng_state(self.rng, d["noise_rng"])
        self._last_x = d["last_x"].clone()
