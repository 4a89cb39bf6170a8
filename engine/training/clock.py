"""Clock: full BPTT through windows that start at t = 0, over a horizon that grows.

Under the task as written S carries no information about the target (SPEC §4.1): the only
way below MSE 0.5 is for the LSTM state, started from zero at t = 0, to run as an
oscillator keyed by C. This method trains exactly that. The run has three phases:

1. **Horizon** (S not fed yet, `amp0` = 0): every step runs the F frequency blocks as a
   batch of streams from a zero (h, c) at t = 0 through the first T rows and
   back-propagates the mean squared error over all of them (full BPTT, no truncation).
   T starts at `t0` rows and grows by `grow` whenever the smoothed loss over the horizon
   is below `thr` (after at least `min_steps` steps at that horizon), until it covers
   the whole block; the learning rate is lr·(t0/T)^lr_pow. A horizon that has not been
   passed after `patience` steps either halves the rate (down to `min_lr_mult` of it),
   when every block is close to passing, or, when a block's loss is still above `trap`,
   starts afresh: that block is caught in a local minimum (typically a transient that
   fits one period of the slowest frequency and does not keep oscillating), where a
   lower rate only digs it in. A start that finds no oscillation within `first_steps`
   steps at the first horizon also starts afresh. A fresh start draws new initial weights
   from a seed derived from the torch seed and the restart count (reproducible).
2. **S**: the amplitude of the S fed to the model rises by `amp_step` (1 = at once) up
   to 1, the task as written, whenever the full-horizon loss is below `thr`. S is always
   drawn fresh by the spec's recipe (`draws` draws per block and step) from a generator
   of its own, never from the train or test seed.
3. **Polish**: the learning rate returns to its full-horizon value (lr·(t0/N)^lr_pow)
   and falls linearly to 0 at the run's end (`anneal`). Every `val_every` steps the
   frozen MSE on a **validation draw** (the spec's recipe with noise seed `val_seed`,
   never the train or test seed) is measured; the best weights so far are kept, and a
   step that lands at more than `rollback` times the best (plus 0.005) goes back to
   them and halves the rate. At the run's end the best weights on validation replace the
   final ones when they are better (`select` = 1); the snapshot says which it holds.

Throughout: a small L2 penalty `s_decay` on the input weights of the S column (it only
shrinks weights the loss does not need); each block's loss weighted by its smoothed loss
to the power `block_weight`, so the lagging block gets the push; the forget-gate bias
raised by `forget_bias` before the first step of a fresh run (a long memory makes the
first oscillation easier to find).

One step trains F·draws·T rows; an epoch is `epoch_sets` times the rows of one set
(F·N: 40,000 for the spec's task), and the run evaluates frozen MSE at every epoch's
end. The state is zero at the start of every window, so it never holds autograd history
between calls. MSE_test (seed 2) decides nothing here.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import numpy as np
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.evaluation import frozen_mse
from engine.model import FrequencyLSTM, build_model
from engine.signals import (
    SignalSet,
    for_config,
    fresh_signal_inputs,
    noise_generator,
    rng_state,
    set_rng_state,
)
from engine.training.base import LIVE_ROWS, Chunk, Trainer

EMA = 0.9  # smoothing of the per-block loss that gates the curriculum
SCHEDULE_VERSION = 2  # snapshots of an earlier clock schedule evaluate but do not resume
PHASES = ("horizon", "S", "polish")


class ClockTrainer(Trainer):
    method = "clock"
    description = (
        "full BPTT from t=0 over a growing horizon, then S at full amplitude, then a polish "
        "that keeps the best weights on a validation draw"
    )
    DEFAULTS: ClassVar[dict[str, Any]] = {"lr": 3e-3, "clip": 1.0, "epochs": 30}
    OPTIONS: ClassVar[dict[str, Any]] = {
        "t0": 1000,
        "grow": 1.5,
        "thr": 0.04,
        "min_steps": 30,
        "patience": 300,
        "min_lr_mult": 0.0625,
        "trap": 0.1,
        "first_steps": 2500,
        "lr_pow": 1.0,
        "draws": 2,
        "amp0": 0.0,
        "amp_step": 1.0,
        "s_decay": 1e-3,
        "block_weight": 1.0,
        "forget_bias": 3.0,
        "noise_seed": 1000,
        "val_seed": 3,
        "val_every": 10,
        "rollback": 2.0,
        "select": 1,
        "epoch_sets": 50,
        "anneal": 1,
    }
    BACKENDS = ("torch", "fused")
    state_batch = "blocks"  # one carried stream per frequency block
    blocks_together = True  # every step runs all the blocks as one batch
    # shown live, without an event for each change: the annealed rate, the validation MSE
    schedule_live = ("lr", "validation MSE", "best validation")
    INTS = (
        "t0", "min_steps", "patience", "first_steps", "draws", "noise_seed", "val_seed", "val_every",
        "select", "epoch_sets", "anneal",
    )  # fmt: skip

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
        self.lr_mult = 1.0  # halved by a stalled horizon or a rollback
        self.val_last: float | None = None  # frozen MSE on the validation draw, last check
        self.best_val: float | None = None
        self.best_at = -1  # run position (rows) of the best weights on validation
        self.best_model: dict[str, torch.Tensor] | None = None
        self.best_optimizer: dict[str, Any] | None = None
        self.rollbacks = 0
        self.restarts = 0  # fresh starts (all weights) after a trap or a start with nothing
        self.selected = ""  # what the model holds once the run has ended: "", "best", "final"
        self._last_x = torch.zeros(config.n_blocks, 1 + config.n_blocks)
        self._stepper = self.fused_window()
        self._set_lr()

    def prepare(self, emit) -> None:
        """Before the first step: compile (or load) the window kernel as a visible step."""
        super().prepare(emit)
        if self._stepper is not None:
            self.warm_up_window(self._stepper, emit)

    # ---- options ----------------------------------------------------------------------
    @classmethod
    def options(cls, config: RunConfig) -> dict[str, Any]:
        o = {**cls.OPTIONS, **config.options}
        out: dict[str, Any] = {}
        for k, v in o.items():
            try:
                out[k] = int(v) if k in cls.INTS else float(v)
            except (TypeError, ValueError, OverflowError) as exc:
                raise FreqtuiError(f"clock option {k} must be a number, got {v!r}") from exc
        return out

    @classmethod
    def validate_options(cls, config: RunConfig) -> None:
        super().validate_options(config)  # option names
        o = cls.options(config)
        for k in ("t0", "min_steps", "draws", "epoch_sets", "val_every"):
            if o[k] < 1:
                raise FreqtuiError(f"clock option {k} must be >= 1, got {o[k]}")
        for k in ("anneal", "select"):
            if o[k] not in (0, 1):
                raise FreqtuiError(f"clock option {k} must be 0 or 1, got {o[k]}")
        for k, v in o.items():
            if not math.isfinite(v):
                raise FreqtuiError(f"clock option {k} must be finite, got {v}")
        if o["grow"] <= 1:
            raise FreqtuiError(f"clock option grow must be > 1, got {o['grow']}")
        if not 0 <= o["amp0"] <= 1:
            raise FreqtuiError(f"clock option amp0 must be in [0, 1], got {o['amp0']}")
        if not 0 < o["min_lr_mult"] <= 1:
            raise FreqtuiError(
                f"clock option min_lr_mult must be in (0, 1], got {o['min_lr_mult']}"
            )
        for k in ("thr", "amp_step", "s_decay", "block_weight", "lr_pow", "noise_seed",
                  "patience", "rollback", "forget_bias", "trap", "first_steps"):  # fmt: skip
            if o[k] < 0:
                raise FreqtuiError(f"clock option {k} must be >= 0, got {o[k]}")
        if o["amp_step"] <= 0:
            raise FreqtuiError("clock option amp_step must be > 0")
        if o["val_seed"] in (config.train_seed, config.test_seed) or o["val_seed"] < 0:
            raise FreqtuiError(
                f"clock option val_seed must be a seed of its own (>= 0, not the train seed "
                f"{config.train_seed} or the test seed {config.test_seed}), got {o['val_seed']}"
            )

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

    @property
    def phase(self) -> str:
        if self.done_at is not None:
            return "polish"
        return "S" if self.horizon >= self.config.n_samples else "horizon"

    def state_check(self, rows: int = 300):
        # one step trains F·draws·T rows and builds a T-step graph: warm the allocator's
        # pools with a few steps on a copy first, so that they are not taken for a leak,
        # then run the shared check over several more steps (on a copy of that copy)
        probe = copy.deepcopy(self)
        for _ in range(3):
            probe.step()
        F, D = self.config.n_blocks, self.o["draws"]
        return Trainer.state_check(probe, max(rows, 5 * F * D * probe.horizon))

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
        """The learning rate at the current position for a run of `epochs`: lr·(t0/T)^lr_pow
        times the stall/rollback multiplier; once the curriculum is done it falls linearly
        to 0 at the run's end."""
        T = self.horizon
        lr = self.config.lr * (min(self.o["t0"], T) / T) ** self.o["lr_pow"] * self.lr_mult
        if self.o["anneal"] and self.done_at is not None:
            end = epochs * self.rows_per_epoch
            lr *= max(0, end - self.position) / max(1, end - self.done_at)
        return lr

    @property
    def position(self) -> int:
        """Rows trained since the run began (epochs x rows_per_epoch + row)."""
        return self.epoch * self.rows_per_epoch + self.row

    @property
    def run_rows(self) -> int:
        return self.config.epochs * self.rows_per_epoch

    def _set_lr(self) -> None:
        lr = self._lr_at(self.config.epochs)
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _init_weights(self) -> None:
        H = self.model.hidden_size
        with torch.no_grad():
            for name, p in self.model.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[H : 2 * H] += self.o["forget_bias"]
        self.initialised = True

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (D·F, T, 1+F) and targets (D·F, T): D noise draws, F blocks each
        (stream d·F + i is draw d of block i)."""
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

    def stream_weights(self, streams: int) -> np.ndarray:
        """The loss weight of each stream: block i weighted by its smoothed loss to the
        power `block_weight` (the weights of the blocks average 1), over F·D streams."""
        F = self.config.n_blocks
        D = streams // F
        w = np.ones(F)
        if self.o["block_weight"] > 0 and self.ema is not None:
            w = (self.ema + 1e-4) ** self.o["block_weight"]
            w = w / w.mean()
        return np.tile(w / (F * D), D)

    def step(self) -> tuple[np.ndarray, int, torch.Tensor, torch.Tensor]:
        """One step. Returns per-block mean loss, rows trained, output, target."""
        if not self.initialised:
            self._init_weights()
        F = self.config.n_blocks
        x, y = self._batch()
        coef = self.stream_weights(x.shape[0])
        if self._stepper is not None:  # the same step, fused (engine/training/kernels/window.py)
            r = self._stepper.step(x, y, coef, clip=self.config.clip, s_decay=self.o["s_decay"])
            if not r.updated:
                self.refuse_non_finite(float("nan"), self.row)
            mse = np.asarray(r.mse, dtype=np.float64)
            out = torch.from_numpy(np.asarray(r.outputs))
            h, c = r.h.unsqueeze(0), r.c.unsqueeze(0)
        else:
            c_t = torch.from_numpy(coef).to(x.dtype)
            o, (h, c) = self.model(x, self.model.init_hidden(x.shape[0]))
            out = o.detach()[..., 0]
            err = ((o[..., 0] - y) ** 2).mean(dim=1)  # (streams,)
            loss = (c_t * err).sum()
            if self.o["s_decay"] > 0:
                loss = loss + self.o["s_decay"] * self.model.lstm.weight_ih_l0[:, 0].pow(2).sum()
            self._optimizer_step(loss, self.row)
            mse = err.detach().numpy().astype(np.float64)
        self.steps += 1
        self.h, self.c = h.detach()[:, :F].clone(), c.detach()[:, :F].clone()
        self._last_x = x[:F, -1].clone()
        bl = mse.reshape(-1, F).mean(axis=0)
        self._advance(bl, x.shape[0] * x.shape[1])
        return bl, x.shape[0] * x.shape[1], out[:F], y[:F]

    def _advance(self, bl: np.ndarray, rows: int) -> None:
        """Move the schedule after a step of `rows` rows: grow the horizon first, then
        raise the S amplitude; in the polish, check the validation draw."""
        self.ema = bl.copy() if self.ema is None else EMA * self.ema + (1 - EMA) * bl
        self.steps_here += 1
        self.row = min(self.rows_per_epoch, self.row + rows)
        if self.done_at is not None:
            if self.steps_here % self.o["val_every"] == 0 or self.position >= self.run_rows:
                self._validate()
            self._set_lr()
            return
        N = self.config.n_samples
        passed = self.steps_here >= self.o["min_steps"] and float(self.ema.mean()) < self.o["thr"]
        if not passed:
            first = self.horizon <= self.o["t0"] and self.amp == self.o["amp0"]
            if first and self.o["first_steps"] and self.steps_here >= self.o["first_steps"]:
                self._restart()  # no oscillation found from this start
            elif not first and self.o["patience"] and self.steps_here >= self.o["patience"]:
                self._stalled()
            return
        if self.horizon < N:
            self.horizon = min(N, int(self.horizon * self.o["grow"]))
        elif self.amp < 1.0:
            self.amp = min(1.0, round(self.amp + self.o["amp_step"], 6))
            if self.amp >= 1.0:
                self.done_at = self.position
                self.lr_mult = 1.0  # the polish starts from the full-horizon rate
        self._set_lr()
        self.ema, self.steps_here = None, 0

    def _stalled(self) -> None:
        """`patience` steps at this horizon without passing. A block still above `trap`
        is caught in a local minimum (typically a transient that fits one period of the
        slowest frequency but does not keep oscillating), where a lower rate only digs it
        in: the run starts afresh. When every block is close to passing, the rate halves
        instead (down to `min_lr_mult`)."""
        assert self.ema is not None
        if float(self.ema.max()) > self.o["trap"]:
            self._restart()
            return
        if self.lr_mult > self.o["min_lr_mult"]:
            self.lr_mult = max(self.o["min_lr_mult"], self.lr_mult / 2)
            self._set_lr()
        self.steps_here = 0

    def _restart(self) -> None:
        """A fresh start: new initial weights (from a seed derived from the torch seed and
        the restart count, so a run stays reproducible), fresh Adam state, the schedule
        from its first horizon. The weights are loaded in place (the kernel reads them)."""
        self.restarts += 1
        seed = ((self.config.torch_seed + 1) * 1_000_003 + self.restarts) % 2**32
        fresh = build_model(self.config.replace(torch_seed=seed))
        with torch.no_grad():
            self.model.load_state_dict(fresh.state_dict())
        self.optimizer.state.clear()
        self.initialised = False
        self.horizon = min(self.config.n_samples, self.o["t0"])
        self.amp = float(self.o["amp0"])
        self.lr_mult = 1.0
        self.ema, self.steps_here = None, 0
        self._set_lr()

    def _validate(self) -> None:
        """Frozen MSE on the validation draw; keep the best weights, or go back to them
        (and halve the rate) when a step fell far off; at the run's end select."""
        val = frozen_mse(self.model, for_config(self.config, self.o["val_seed"])).overall
        self.val_last = val
        if self.best_val is None or val < self.best_val:
            self.best_val, self.best_at = val, self.position
            self.best_model = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best_optimizer = copy.deepcopy(self.optimizer.state_dict())
        elif self.o["rollback"] > 0 and val > self.o["rollback"] * self.best_val + 0.005:
            self._restore_best()
            self.rollbacks += 1
            self.lr_mult /= 2
        if self.position >= self.run_rows and self.o["select"]:
            if self.best_val is not None and self.best_at != self.position:
                self._restore_best()
                self.selected = "best"
            else:
                self.selected = "final"

    def _restore_best(self) -> None:
        assert self.best_model is not None and self.best_optimizer is not None
        with torch.no_grad():
            self.model.load_state_dict(self.best_model)
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(copy.deepcopy(self.best_optimizer))
        for g, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            g["lr"] = lr

    def weights_note(self) -> str:
        """Which weights the model holds, for snapshots, `eval` and the console."""
        seed = self.o["val_seed"]
        if self.selected == "best":
            return (
                f"best on the validation draw (noise seed {seed}) at row {self.best_at:,}: "
                f"validation MSE {self.best_val:.4g}"
            )
        if self.selected == "final":
            return f"final (also the best on the validation draw, noise seed {seed})"
        return "current (training)"

    def schedule(self) -> tuple[tuple[str, str], ...]:
        """The schedule's state, for the status line and the log."""
        items = [
            ("phase", self.phase),
            ("horizon", f"{self.horizon:,} rows"),
            ("S amplitude", f"{self.amp:.2g}"),
            ("lr", f"{self.lr:.2e}"),  # as the optimizer holds it
        ]
        if self.val_last is not None:
            items.append(("validation MSE", f"{self.val_last:.4f}"))
        if self.best_val is not None:
            items.append(("best validation", f"{self.best_val:.4f}"))
        if self.restarts:
            items.append(("restarts", str(self.restarts)))
        return tuple(items)

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
            block = self.steps % F  # the live plot shows the blocks in turn
            T = out.shape[1]
            keep = slice(max(0, T - LIVE_ROWS), T)
            live = (self.t[keep], y[block, keep].numpy(), out[block, keep].numpy())
        return Chunk.of(loss_sum, counts, block, live)

    # ---- snapshots ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        d.update(
            schedule_version=SCHEDULE_VERSION,
            horizon=self.horizon,
            amp=self.amp,
            ema=None if self.ema is None else [float(v) for v in self.ema],
            steps_here=self.steps_here,
            done_at=-1 if self.done_at is None else self.done_at,
            steps=self.steps,
            initialised=self.initialised,
            noise_rng=rng_state(self.rng),
            last_x=self._last_x.clone(),
            lr_mult=self.lr_mult,
            val_last=-1.0 if self.val_last is None else self.val_last,
            best_val=-1.0 if self.best_val is None else self.best_val,
            best_at=self.best_at,
            best_model=self.best_model,
            best_optimizer=self.best_optimizer,
            rollbacks=self.rollbacks,
            restarts=self.restarts,
            selected=self.selected,
        )
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if d.get("schedule_version") != SCHEDULE_VERSION:
            raise FreqtuiError(
                "this clock session was trained by an earlier clock schedule: `freqtui eval` "
                "and `freqtui report` read it, but it cannot be resumed; start a new run"
            )
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
        self.lr_mult = float(d["lr_mult"])
        self.val_last = None if d["val_last"] < 0 else float(d["val_last"])
        self.best_val = None if d["best_val"] < 0 else float(d["best_val"])
        self.best_at = int(d["best_at"])
        self.best_model = d["best_model"]
        self.best_optimizer = d["best_optimizer"]
        self.rollbacks = int(d["rollbacks"])
        self.restarts = int(d["restarts"])
        self.selected = str(d["selected"])
