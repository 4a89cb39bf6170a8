"""Clock: full BPTT from t = 0 through windows that grow, then a polish of its own.

Under the task as written S carries no information about the target (SPEC §4.1): the only
way below MSE 0.5 is for the LSTM state, started from zero at t = 0, to run as an
oscillator keyed by C. This method trains exactly that. Every step runs the F frequency
blocks as a batch of streams from a zero (h, c) at t = 0 and back-propagates through
every row of each block's window (full BPTT, no truncation). The run has three phases:

1. **Horizon** (S not fed yet, `amp0` = 0): a curriculum in stages. Block i trains on a
   window of k periods of its *current target frequency* (k = `k0` at first), its loss
   masked beyond; a block slower than `slide_from` Hz starts with a target at `slide_from`
   Hz, so that the slow block first learns the oscillation the faster ones also need
   (a slow oscillation is hard to discover from scratch: a damped transient that fits
   one period is a flat local minimum). A stage is passed when *every* block's smoothed
   loss is below `thr` (after at least `min_steps` steps): then the raised targets are
   divided by `slide` (frequency continuation: 3 Hz to 1 Hz in 8 passes), and once every
   target is true, k grows by `grow` a pass until every window is the whole block. The
   learning rate is lr·(min(t0, T)/T)^lr_pow with T the mean window.
2. **S**: the amplitude of the S fed to the model rises by `amp_step` (1 = at once) up
   to 1, the task as written, whenever the full-window loss of every block is below
   `thr`. With `s_hold` the stage at full S is gated too (every block below `final_thr`),
   with the same trap rules, before the polish starts: S fed at once can knock a block
   out of its oscillation. S is always drawn fresh by the spec's recipe (`draws` draws
   per block and step) from a generator of its own, never from the train or test seed.
3. **Polish**, a budget of its own: `polish` epochs counted from the end of the
   curriculum (so a slow or restarted curriculum never eats it; the run's `--epochs` is
   only a cap). The learning rate returns to its full-window value and falls linearly
   to 0 at the polish's end (`anneal`). Every `val_every` steps the frozen MSE on a
   **validation draw** (the spec's recipe with noise seed `val_seed`, never the train or
   test seed) is measured; the best weights so far are kept, and a step that lands at
   more than `rollback` times the best (plus 0.005) goes back to them and halves the
   rate. At the end the best weights on validation replace the final ones when they are
   better (`select` = 1); the snapshot says which it holds.

A stage not passed after `patience` steps, with a block still above `trap`, is caught in
a trap (a transient that fits the window and dies out): the weights go back to where the
last stage was passed, at half the rate, up to `retries` times a stage; after that, and
when the first stage finds no oscillation within `first_steps` steps, the run starts
afresh from new initial weights (a seed derived from the torch seed and the restart
count: reproducible). A stall with every block close to passing halves the rate instead.

Throughout: a small L2 penalty `s_decay` on the input weights of the S column (it only
shrinks weights the loss does not need); each block's loss weighted by its smoothed loss
to the power `block_weight`, so the lagging block gets the push; the forget-gate bias
raised by `forget_bias` before the first step of a fresh run (a long memory makes the
first oscillation easier to find).

One step trains draws·(sum of the windows) rows, and only those rows are computed and
counted (the window kernel runs each stream to its own length); an epoch is
`epoch_sets` times the rows of one set (F·N: 40,000 for the spec's task), and the run
evaluates frozen MSE at every epoch's end. The state is zero at the start of every
window, so it never holds autograd history between calls. MSE_test (seed 2) decides
nothing here.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from engine.config import RunConfig
from engine.errors import FreqtuiError
from engine.evaluation import frozen_mse
from engine.methods import CLOCK
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
SCHEDULE_VERSION = 5  # snapshots of an earlier clock schedule evaluate but do not resume
PHASES = ("horizon", "S", "polish")


class ClockTrainer(Trainer):
    spec = CLOCK  # its description, defaults and `-O` options: engine/methods.py
    method = spec.name
    state_batch = "blocks"  # one carried stream per frequency block
    blocks_together = True  # every step runs all the blocks as one batch
    # shown live, without an event for each change: the annealed rate, the validation MSE
    schedule_live = ("lr", "validation MSE", "best validation", "polish")

    def __init__(self, model: FrequencyLSTM, config: RunConfig, train: SignalSet) -> None:
        super().__init__(model, config, train)
        o = self.spec.values(config.options)
        self.o = o
        self.targets = torch.from_numpy(np.array(train.targets, dtype=np.float32))  # (F, N)
        self.t = train.t
        self.freqs = np.array(config.frequencies, dtype=np.float64)
        self.rng = noise_generator(o["noise_seed"])
        self.k = float(o["k0"])  # periods of its current target in each block's window
        self.fcur = self._first_targets()  # (F,) current target frequency of each block
        self.amp = float(o["amp0"])
        self.ema: np.ndarray | None = None
        self.steps_here = 0  # steps since the curriculum last moved
        self.stages = 0  # stages passed since the last fresh start
        self.retries_here = 0  # rollbacks to the last passed stage, at this stage
        self.done_at: int | None = None  # run position (rows) when the curriculum finished
        # the polish's end (epochs) when a resume asked to train on past a finished polish
        self.polish_end: int | None = None
        self.steps = 0
        self.initialised = False  # the forget-bias recipe is applied before the first step
        self.lr_mult = 1.0  # halved by a stall, a stage rollback or a polish rollback
        self.passed_model: dict[str, torch.Tensor] | None = None  # at the last stage passed
        self.passed_optimizer: dict[str, Any] | None = None
        self.val_last: float | None = None  # frozen MSE on the validation draw, last check
        self.best_val: float | None = None
        self.best_at = -1  # run position (rows) of the best weights on validation
        self.best_model: dict[str, torch.Tensor] | None = None
        self.best_optimizer: dict[str, Any] | None = None
        self.rollbacks = 0  # polish rollbacks to the best weights on validation
        self.stage_rollbacks = 0  # curriculum rollbacks to the last passed stage
        self.restarts = 0  # fresh starts (all weights) after a trap or a start with nothing
        self.last_event = ""  # why the schedule last went back (a restart, a rollback)
        self.selected = ""  # what the model holds once the run has ended: "", "best", "final"
        self._last_x = torch.zeros(config.n_blocks, 1 + config.n_blocks)
        self._target_cache: tuple[tuple[float, ...], torch.Tensor] | None = None
        self._stepper = self.fused_window()
        self._set_lr()

    # ---- the schedule's geometry --------------------------------------------------------
    def _first_targets(self) -> np.ndarray:
        return np.maximum(self.freqs, self.o["slide_from"])

    @property
    def sliding(self) -> bool:
        """Some block still trains on a raised target frequency."""
        return bool(np.any(self.fcur > self.freqs))

    def windows(self) -> np.ndarray:
        """Each block's window (rows): k periods of its current target, at most the block."""
        N = self.config.n_samples
        w = np.ceil(self.k * self.config.fs / self.fcur - 1e-9).astype(np.int64)
        return np.clip(w, 1, N)

    @property
    def horizon(self) -> int:
        """The longest window (rows)."""
        return int(self.windows().max())

    def _targets(self) -> torch.Tensor:
        """(F, longest window) targets: sin(2π f t) at each block's current target f
        (the spec's own targets once it is true), 0 beyond the block's window."""
        key = (*self.fcur.tolist(), self.k)
        if self._target_cache is None or self._target_cache[0] != key:
            win = self.windows()
            T = int(win.max())
            y = torch.zeros(len(win), T)
            for i, (f, n) in enumerate(zip(self.fcur, win, strict=True)):
                if f == self.freqs[i]:
                    y[i, :n] = self.targets[i, :n]
                else:
                    y[i, :n] = torch.from_numpy(
                        np.sin(2 * np.pi * f * self.t[:n]).astype(np.float32)
                    )
            self._target_cache = (key, y)
        return self._target_cache[1]

    # ---- the contract ---------------------------------------------------------------
    @property
    def rows_per_epoch(self) -> int:
        return int(self.o["epoch_sets"]) * self.config.rows_per_set

    @property
    def last_input(self) -> torch.Tensor:
        return self._last_x

    @property
    def curriculum_done(self) -> bool:
        return self.done_at is not None

    @property
    def phase(self) -> str:
        if self.done_at is not None:
            return "polish"
        full = not self.sliding and bool(np.all(self.windows() >= self.config.n_samples))
        return "S" if full else "horizon"

    @property
    def planned_epochs(self) -> int:
        """The run's length in epochs: the epoch in which the curriculum ended plus the
        polish's own `polish` epochs, at most --epochs. While the curriculum runs, the
        least it can be (the current epoch plus the polish)."""
        if self.polish_end is not None:
            return min(self.config.epochs, self.polish_end)
        return min(self.config.epochs, self._polish_end(self.epoch))

    def _polish_end(self, epoch_now: int) -> int:
        """The epoch with which the polish ends, uncapped: `polish` epochs after the epoch
        in which the curriculum ended (or, while it runs, after the current one)."""
        start = epoch_now if self.done_at is None else self.done_at // self.rows_per_epoch
        return start + 1 + self.o["polish"]

    def state_check(self, rows: int = 300):
        # one step trains draws·(sum of windows) rows and builds a graph as long as the
        # longest: warm the allocator's pools with a few steps on a copy first, so that
        # they are not taken for a leak, then run the shared check over several more
        # steps (on a copy of that copy)
        probe = copy.deepcopy(self)
        for _ in range(3):
            probe.step()
        D = self.o["draws"]
        return Trainer.state_check(probe, max(rows, 5 * D * int(probe.windows().sum())))

    def length_change_note(self, old_epochs: int, new_epochs: int) -> str:
        if self.done_at is None:
            return (
                f"the curriculum and its polish of {self.o['polish']} epoch(s) must now "
                f"end by epoch {new_epochs} instead of {old_epochs}"
            )
        uncapped = self._polish_end(self.epoch)
        old_end = min(old_epochs, uncapped)
        # a polish that had ended goes on to the new --epochs (load_state_dict set its end)
        new_end = self.planned_epochs if self.polish_end is not None else min(new_epochs, uncapped)
        if old_end != new_end and not self.o["anneal"]:
            return f"the polish now ends with epoch {new_end} instead of {old_end}"
        if old_end == new_end:
            return (
                f"the polish ends with epoch {new_end} either way (the curriculum ended in "
                f"epoch {self.done_at // self.rows_per_epoch + 1}; the polish is "
                f"{self.o['polish']} epoch(s) of its own), so nothing changes"
            )
        now, then = self._lr_at(old_end), self._lr_at(new_end)
        return (
            f"the polish's learning-rate anneal is under way: it now ends with epoch "
            f"{new_end} instead of {old_end}, so the learning rate jumps from {now:.2e} to "
            f"{then:.2e} and falls to 0 over the new length (a run of {new_epochs} epochs "
            f"from the start would not follow this trajectory)"
        )

    def _lr_at(self, end_epoch: int) -> float:
        """The learning rate at the current position for a run that ends with
        `end_epoch`: lr·(min(t0, T)/T)^lr_pow with T the mean window, times the
        stall/rollback multiplier; once the curriculum is done it falls linearly to 0 at
        the end."""
        T = float(self.windows().mean())
        lr = self.config.lr * (min(self.o["t0"], T) / T) ** self.o["lr_pow"] * self.lr_mult
        if self.o["anneal"] and self.done_at is not None:
            end = end_epoch * self.rows_per_epoch
            lr *= max(0, end - self.position) / max(1, end - self.done_at)
        return lr

    @property
    def position(self) -> int:
        """Rows trained since the run began (epochs x rows_per_epoch + row)."""
        return self.epoch * self.rows_per_epoch + self.row

    @property
    def run_rows(self) -> int:
        return self.planned_epochs * self.rows_per_epoch

    def _set_lr(self) -> None:
        lr = self._lr_at(self.planned_epochs)
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

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Inputs (D·F, T, 1+F), targets (D·F, T) and windows (D·F,): D noise draws, F
        blocks each (stream d·F + i is draw d of block i), T the longest window."""
        F = self.config.n_blocks
        y1 = self._targets()
        T = y1.shape[1]
        D = self.o["draws"] if self.amp > 0 else 1
        x = torch.zeros(D, F, T, 1 + F)
        for d in range(D):
            if self.amp > 0:
                S = fresh_signal_inputs(self.rng, self.config, T)
                x[d, :, :, 0] = torch.from_numpy(S) * self.amp
        for i in range(F):
            x[:, i, :, 1 + i] = 1.0
        y = y1.unsqueeze(0).expand(D, F, T)
        return x.reshape(D * F, T, 1 + F), y.reshape(D * F, T), np.tile(self.windows(), D)

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

    def step(self) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
        """One step. Returns per-block mean loss, every stream's window (rows; stream
        d·F + i is draw d of block i), output and target (the blocks of the first draw, 0
        past each window)."""
        if not self.initialised:
            self._init_weights()
        F = self.config.n_blocks
        x, y, lens = self._batch()
        coef = self.stream_weights(x.shape[0])
        if self._stepper is not None:  # the same step, fused (engine/training/kernels/window.py)
            r = self._stepper.step(
                x, y, coef, clip=self.config.clip, s_decay=self.o["s_decay"], lengths=lens
            )
            if not r.updated:
                self.refuse_non_finite(float("nan"), self.row)
            mse = np.asarray(r.online_loss, dtype=np.float64)
            out = torch.from_numpy(np.asarray(r.outputs))
            h, c = r.h.unsqueeze(0), r.c.unsqueeze(0)
        else:
            T = x.shape[1]
            mask = (torch.arange(T)[None, :] < torch.from_numpy(lens)[:, None]).to(x.dtype)
            c_t = torch.from_numpy(coef).to(x.dtype)
            o, (h, c) = self.model(x, self.model.init_hidden(x.shape[0]))
            out = o.detach()[..., 0] * mask
            # each stream's error over its own window only
            err = (((o[..., 0] - y) ** 2) * mask).sum(dim=1) / torch.from_numpy(lens).to(x.dtype)
            loss = (c_t * err).sum()
            if self.o["s_decay"] > 0:
                loss = loss + self.o["s_decay"] * self.model.lstm.weight_ih_l0[:, 0].pow(2).sum()
            self._optimizer_step(loss, self.row)
            mse = err.detach().numpy().astype(np.float64)
        self.steps += 1
        self.h, self.c = h.detach()[:, :F].clone(), c.detach()[:, :F].clone()
        self._last_x = x[:F, -1].clone()
        bl = mse.reshape(-1, F).mean(axis=0)
        self._advance(bl, int(lens.sum()))
        return bl, lens, out[:F], y[:F]

    def _advance(self, bl: np.ndarray, rows: int) -> None:
        """Move the schedule after a step of `rows` rows: slide the raised targets down,
        then grow the windows, then raise the S amplitude; in the polish, check the
        validation draw."""
        self.ema = bl.copy() if self.ema is None else EMA * self.ema + (1 - EMA) * bl
        self.steps_here += 1
        self.row = min(self.rows_per_epoch, self.row + rows)
        if self.done_at is not None:
            if self.steps_here % self.o["val_every"] == 0 or self.position >= self.run_rows:
                self._validate()
            self._set_lr()
            return
        # every block must pass, not their mean: a mean gate lets a trapped block through
        thr = self.o["final_thr"] if self._final_stage else self.o["thr"]
        passed = self.steps_here >= self.o["min_steps"] and float(self.ema.max()) < thr
        if not passed:
            if self.stages == 0:
                if self.o["first_steps"] and self.steps_here >= self.o["first_steps"]:
                    self._restart("no oscillation found at the first stage")
            elif self.o["patience"] and self.steps_here >= self.o["patience"]:
                self._stalled()
            return
        self._keep_passed()
        N = self.config.n_samples
        if self.sliding:
            raised = self.fcur > self.freqs
            lower = self.fcur / self.o["slide"]
            # a step that would land within 1% of the true frequency lands on it
            self.fcur = np.where(
                raised, np.where(lower <= self.freqs * 1.01, self.freqs, lower), self.fcur
            )
        elif np.any(self.windows() < N):
            self.k *= self.o["grow"]
            if not self.o["s_gate"] and np.all(self.windows() >= N):
                self._raise_amp()  # no gate of its own at the whole windows
        elif self.amp < 1.0:
            self._raise_amp()
        else:  # the stage at full S passed (`s_hold`): the curriculum is done
            self._finish()
        self.stages += 1
        self.retries_here = 0
        if self.o["stage_lr_reset"]:
            self.lr_mult = 1.0  # a halved rate was for the stage it helped pass
        self._set_lr()
        self.ema, self.steps_here = None, 0

    def _raise_amp(self) -> None:
        self.amp = min(1.0, round(self.amp + self.o["amp_step"], 6))
        if self.amp >= 1.0 and not self.o["s_hold"]:
            self._finish()

    @property
    def _final_stage(self) -> bool:
        """The stage at whole windows and full S, gated on its own (`s_hold`)."""
        return (
            self.amp >= 1.0
            and not self.sliding
            and bool(np.all(self.windows() >= self.config.n_samples))
        )

    def _finish(self) -> None:
        """The curriculum is done: the polish starts, from the full-window rate (or from
        the rate the curriculum ended with, `polish_reset` = 0)."""
        self.done_at = self.position
        if self.o["polish_reset"]:
            self.lr_mult = 1.0

    def _keep_passed(self) -> None:
        """Keep the weights (and Adam's state) at a passed stage, to roll back to."""
        self.passed_model = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.passed_optimizer = copy.deepcopy(self.optimizer.state_dict())

    def _stalled(self) -> None:
        """`patience` steps at this stage without passing. A block still above `trap` is
        caught in a trap (typically a transient that fits its window but does not keep
        oscillating), where a lower rate alone only digs it in: back to the weights of
        the last stage passed at half the rate (`retries` times a stage), then a fresh
        start. When every block is close to passing, the rate halves instead."""
        assert self.ema is not None
        worst = int(np.argmax(self.ema))
        if float(self.ema[worst]) > self.o["trap"]:
            f = self.freqs[worst]
            why = (
                f"the {f:g} Hz block stalled at {self.ema[worst]:.2f} "
                f"(target {self.fcur[worst]:.3g} Hz, window {int(self.windows()[worst]):,} rows)"
            )
            if self.passed_model is not None and self.retries_here < self.o["retries"]:
                self._load(self.passed_model, self.passed_optimizer)
                self.retries_here += 1
                self.stage_rollbacks += 1
                self.lr_mult = max(self.o["min_lr_mult"], self.lr_mult / 2)
                self.last_event = f"rollback {self.stage_rollbacks}: {why}"
                self.ema, self.steps_here = None, 0
                self._set_lr()
            else:
                self._restart(why)
            return
        if self.lr_mult > self.o["min_lr_mult"]:
            self.lr_mult = max(self.o["min_lr_mult"], self.lr_mult / 2)
            self._set_lr()
        self.steps_here = 0

    def _restart(self, why: str) -> None:
        """A fresh start: new initial weights (from a seed derived from the torch seed and
        the restart count, so a run stays reproducible), fresh Adam state, the schedule
        from its first stage. The weights are loaded in place (the kernel reads them)."""
        self.restarts += 1
        self.last_event = f"restart {self.restarts}: {why}"
        seed = ((self.config.torch_seed + 1) * 1_000_003 + self.restarts) % 2**32
        fresh = build_model(self.config.replace(torch_seed=seed))
        with torch.no_grad():
            self.model.load_state_dict(fresh.state_dict())
        self.optimizer.state.clear()
        self.initialised = False
        self.k = float(self.o["k0"])
        self.fcur = self._first_targets()
        self.amp = float(self.o["amp0"])
        self.lr_mult = 1.0
        self.stages = self.retries_here = 0
        self.passed_model = self.passed_optimizer = None
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
            assert self.best_model is not None
            self._load(self.best_model, self.best_optimizer)
            self.rollbacks += 1
            self.lr_mult /= 2
        if self.position >= self.run_rows and self.o["select"]:
            if self.best_val is not None and self.best_at != self.position:
                assert self.best_model is not None
                self._load(self.best_model, self.best_optimizer)
                self.selected = "best"
            else:
                self.selected = "final"

    def _load(self, model: dict[str, torch.Tensor], optimizer: dict[str, Any] | None) -> None:
        """Weights and Adam's state back to a kept copy, in place (the kernel reads the
        very tensors); the learning rate stays the schedule's."""
        with torch.no_grad():
            self.model.load_state_dict(model)
        assert optimizer is not None
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(copy.deepcopy(optimizer))
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
        win = self.windows()
        items = [("phase", self.phase)]
        if self.sliding:
            slow = int(np.argmin(self.freqs))
            items.append(("slide", f"{self.freqs[slow]:g} Hz block at {self.fcur[slow]:.2f} Hz"))
        items += [
            ("horizon", f"{int(win.min()):,}-{int(win.max()):,} rows"
             if win.min() != win.max() else f"{int(win.max()):,} rows"),
            ("S amplitude", f"{self.amp:.2g}"),
            ("lr", f"{self.lr:.2e}"),  # as the optimizer holds it
        ]  # fmt: skip
        if self.done_at is not None:
            end = self.planned_epochs * self.rows_per_epoch
            done = (self.position - self.done_at) / max(1, end - self.done_at)
            items.append(("polish", f"{min(1.0, done):.0%} of {self.o['polish']} epochs"))
        if self.val_last is not None:
            items.append(("validation MSE", f"{self.val_last:.4f}"))
        if self.best_val is not None:
            items.append(("best validation", f"{self.best_val:.4f}"))
        if self.restarts or self.stage_rollbacks:
            items.append(("restarts", f"{self.restarts} ({self.last_event})"))
        return tuple(items)

    def train_rows(self, max_rows: int) -> Chunk:
        F = self.config.n_blocks
        loss_sum = np.zeros(F)
        counts = np.zeros(F, dtype=np.int64)
        done = 0
        block = 0
        live = (np.zeros(0), np.zeros(0), np.zeros(0))
        while self.row < self.rows_per_epoch and (done == 0 or done < max_rows):
            bl, lens, out, y = self.step()
            rows = lens.reshape(-1, F).sum(axis=0)
            loss_sum += bl * rows
            counts += rows
            done += int(rows.sum())
            block = self.steps % F  # the live plot shows the blocks in turn
            n = int(lens[block])
            keep = slice(max(0, n - LIVE_ROWS), n)
            live = (self.t[keep], y[block, keep].numpy(), out[block, keep].numpy())
        return Chunk.of(loss_sum, counts, block, live)

    # ---- snapshots ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        d.update(
            schedule_version=SCHEDULE_VERSION,
            k=self.k,
            fcur=[float(v) for v in self.fcur],
            amp=self.amp,
            ema=None if self.ema is None else [float(v) for v in self.ema],
            steps_here=self.steps_here,
            stages=self.stages,
            retries_here=self.retries_here,
            done_at=-1 if self.done_at is None else self.done_at,
            polish_end=-1 if self.polish_end is None else self.polish_end,
            epochs_cap=self.config.epochs,
            steps=self.steps,
            initialised=self.initialised,
            noise_rng=rng_state(self.rng),
            last_x=self._last_x.clone(),
            lr_mult=self.lr_mult,
            passed_model=self.passed_model,
            passed_optimizer=self.passed_optimizer,
            val_last=-1.0 if self.val_last is None else self.val_last,
            best_val=-1.0 if self.best_val is None else self.best_val,
            best_at=self.best_at,
            best_model=self.best_model,
            best_optimizer=self.best_optimizer,
            rollbacks=self.rollbacks,
            stage_rollbacks=self.stage_rollbacks,
            restarts=self.restarts,
            last_event=self.last_event,
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
        self.k = float(d["k"])
        self.fcur = np.array(d["fcur"], dtype=np.float64)
        self.amp = float(d["amp"])
        self.ema = None if d["ema"] is None else np.array(d["ema"], dtype=np.float64)
        self.steps_here = int(d["steps_here"])
        self.stages = int(d["stages"])
        self.retries_here = int(d["retries_here"])
        self.done_at = None if int(d["done_at"]) < 0 else int(d["done_at"])
        self.polish_end = None if int(d.get("polish_end", -1)) < 0 else int(d["polish_end"])
        planned = int(d.get("planned_epochs", self.planned_epochs))
        asked = self.config.epochs != int(d.get("epochs_cap", self.config.epochs))
        if asked and self.epoch >= planned and self.config.epochs > planned:
            # resumed with another --epochs after its polish ended: the polish goes on, its
            # anneal stretched to the new end (length_change_note says what that changes)
            self.polish_end = self.config.epochs
        self.steps = int(d["steps"])
        self.initialised = bool(d["initialised"])
        set_rng_state(self.rng, d["noise_rng"])
        self._last_x = d["last_x"].clone()
        self.lr_mult = float(d["lr_mult"])
        self.passed_model = d["passed_model"]
        self.passed_optimizer = d["passed_optimizer"]
        self.val_last = None if d["val_last"] < 0 else float(d["val_last"])
        self.best_val = None if d["best_val"] < 0 else float(d["best_val"])
        self.best_at = int(d["best_at"])
        self.best_model = d["best_model"]
        self.best_optimizer = d["best_optimizer"]
        self.rollbacks = int(d["rollbacks"])
        self.stage_rollbacks = int(d["stage_rollbacks"])
        self.restarts = int(d["restarts"])
        self.last_event = str(d["last_event"])
        self.selected = str(d["selected"])
        self._target_cache = None
