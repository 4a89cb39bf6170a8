"""The training methods, declared once each: the one method registry.

A method's declaration is what the config, the CLI and `freqtui methods` know of it: its
description, its own lr, clip and epochs (RunConfig's defaults when the flags are not
given), its backends and its `-O` options (engine/options.py). Its code is a `Trainer`
in engine/training/, which names its declaration as `spec`.

The declarations live here, not beside the trainers, because the trainers import torch
and this module must not: `freqtui methods`, `--help` and the config's checks read it
without loading torch (the trainers' modules import their declaration from here). To
add a method: declare it here, list it in `METHODS`, and write its Trainer with
`spec` set to it (engine/training/__init__.py lists the trainers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import FreqtuiError
from engine.limits import SEED_LIMIT
from engine.options import Option, resolve


@dataclass(frozen=True)
class Method:
    """A training method as the config and the CLI know it."""

    name: str
    description: str
    lr: float
    clip: float  # clipping by total norm; 0 = off
    epochs: int
    backends: tuple[str, ...] = ("torch",)
    options: tuple[Option, ...] = ()
    # checks that tie an option to the rest of the config: (values, config) -> None
    check: Callable[[dict[str, Any], Any], None] | None = None

    def own_default(self, field_name: str) -> Any:
        """The method's own lr, clip or epochs."""
        return getattr(self, field_name)

    def values(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every option's value (given, else its default), typed and within its bounds."""
        return resolve(self.options, given, self.name)

    def validate(self, config: Any) -> None:  # a RunConfig (config.py imports this module)
        """Raise FreqtuiError for an option the method does not have or a bad value."""
        values = self.values(config.options)
        if self.check is not None:
            self.check(values, config)


# shared by tbptt and the clock: the generator of fresh S draws
NOISE_SEED = Option(
    "noise_seed", 1000, int, 0, SEED_LIMIT - 1,
    "seed of the generator that draws the fresh S (its own, apart from the train and test seeds)",
)  # fmt: skip

HANDOFF = Method(
    name="handoff",
    description="the hand-off's pattern: L=1, batch 1, state detached every row (SPEC §2)",
    lr=1e-3,
    clip=0.0,
    epochs=1,
    backends=("torch", "fused"),
)

TBPTT = Method(
    name="tbptt",
    description="truncated BPTT: rows in time order, gradients through the last K rows",
    lr=1e-3,
    clip=1.0,
    epochs=1,
    backends=("torch", "fused"),
    options=(
        Option("k", 200, int, 1, 100_000, "rows per truncation window and per update"),
        Option(
            "reset", "block", str, help="block: zero the state at each frequency block's "
            "t = 0 (as frozen evaluation does); carry: carry it across blocks and epochs",
            choices=("block", "carry"),
        ),
        Option(
            "noise", "fresh", str, help="fresh: a new S drawn by the spec's recipe every "
            "epoch; train: the seed-1 rows every epoch (one fixed draw is memorised)",
            choices=("train", "fresh"),
        ),
        NOISE_SEED,
    ),
)  # fmt: skip


def _clock_check(o: dict[str, Any], config: Any) -> None:
    if o["val_seed"] in (config.train_seed, config.test_seed):
        raise FreqtuiError(
            f"clock option val_seed must be a seed of its own (>= 0, not the train seed "
            f"{config.train_seed} or the test seed {config.test_seed}), got {o['val_seed']}"
        )


# engine/training/clock.py's docstring tells the schedule these options steer
CLOCK = Method(
    name="clock",
    description=(
        "full BPTT from t=0 through per-block windows that slide from 3 Hz down to each "
        "block's frequency and grow to the whole block, then S at full amplitude, then a "
        "polish of its own that keeps the best weights on a validation draw"
    ),
    lr=3e-3,
    clip=1.0,
    epochs=60,  # a cap on the whole run; the polish has a budget of its own (`polish`)
    backends=("torch", "fused"),
    options=(
        Option("t0", 1000, int, 1, 10_000_000,
               "rows: the learning rate is lr while the mean window T is at most t0, "
               "then lr·(t0/T)^lr_pow"),
        Option("k0", 3.0, float, 0, None,
               "periods of its current target in each block's first window", above=True),
        Option("slide_from", 3.0, float, 0, None,
               "a block slower than this (Hz) first trains on a target at this frequency, "
               "then slides down to its own", above=True),
        Option("slide", 1.15, float, 1, None,
               "a passed stage divides every raised target frequency by this", above=True),
        Option("grow", 2.0, float, 1, 1_000,
               "once every target is true, a passed stage multiplies the periods in each "
               "window by this, until every window is the whole block", above=True),
        Option("thr", 0.005, float, 0, None,
               "a stage is passed when every block's smoothed online loss is below this"),
        Option("min_steps", 30, int, 1, 1_000_000,
               "steps at a stage before it may be passed"),
        Option("patience", 300, int, 0, None,
               "steps at a stage without passing before a stall is handled: rollback, "
               "restart or half the rate (0: never)"),
        Option("retries", 1, int, 0, None,
               "rollbacks to the last passed stage (at half the rate) before a trapped "
               "stage restarts the run from new weights"),
        Option("min_lr_mult", 0.0625, float, 0, 1,
               "the least that stalls and stage rollbacks may scale the learning rate by",
               above=True),
        Option("trap", 0.02, float, 0, None,
               "a stalled block with its smoothed loss above this is trapped: roll back or "
               "restart rather than halve the rate"),
        Option("first_steps", 2500, int, 0, None,
               "steps the first stage has to find an oscillation before the run restarts "
               "from new weights (0: no limit)"),
        Option("lr_pow", 1.0, float, 0, None,
               "how steeply the learning rate falls once the mean window T outgrows t0: "
               "lr·(t0/T)^lr_pow"),
        Option("draws", 2, int, 1, 64,
               "noise draws of S per block and step, once S is fed"),
        Option("amp0", 0.0, float, 0, 1,
               "the amplitude of S fed from the start (0: S waits for the whole windows)"),
        Option("amp_step", 1.0, float, 0, None,
               "how much a passed stage at the whole windows raises S's amplitude "
               "(1: to the task as written at once)", above=True),
        Option("s_gate", 1, int, 0, 1,
               "1: S is raised after a stage passed at the whole windows; 0: as soon as "
               "the windows are the whole blocks"),
        Option("s_hold", 1, int, 0, 1,
               "1: the stage at the whole windows and full S is gated too (every block "
               "below final_thr, the trap rules) before the polish starts"),
        Option("final_thr", 0.04, float, 0, None,
               "the gate of the stage at full S (with s_hold)"),
        Option("polish_reset", 1, int, 0, 1,
               "1: the polish starts from the full-window rate; 0: from the rate the "
               "curriculum ended with (its halvings kept)"),
        Option("stage_lr_reset", 0, int, 0, 1,
               "1: a passed stage undoes the halvings of the learning rate made at it"),
        Option("s_decay", 1e-3, float, 0, None,
               "L2 penalty on the input weights of the S column"),
        Option("block_weight", 1.0, float, 0, None,
               "each block's loss is weighted by its smoothed loss to this power, so the "
               "lagging block gets the push (0: equal weights)"),
        Option("forget_bias", 3.0, float, 0, None,
               "added to the forget-gate bias before the first step of a fresh start (a "
               "long memory finds the first oscillation sooner)"),
        NOISE_SEED,
        Option("val_seed", 3, int, 0, SEED_LIMIT - 1,
               "noise seed of the validation draw that the polish checks and selects on "
               "(not the train or test seed)"),
        Option("val_every", 10, int, 1, 1_000_000,
               "steps between checks of the validation draw in the polish"),
        Option("rollback", 2.0, float, 0, None,
               "in the polish, a validation MSE above this times the best (+0.005) goes "
               "back to the best weights at half the rate (0: never)"),
        Option("select", 1, int, 0, 1,
               "1: at the end the best weights on the validation draw replace the final "
               "ones when they are better"),
        Option("epoch_sets", 50, int, 1, 1_000_000,
               "rows of an epoch, in sets: an epoch is this many times the rows of one set"),
        Option("polish", 10, int, 1, None,
               "epochs of the polish, counted from the end of the curriculum (--epochs "
               "only caps the run)"),
        Option("anneal", 1, int, 0, 1,
               "1: the polish's learning rate falls linearly to 0 at its end"),
    ),
    check=_clock_check,
)  # fmt: skip

# every method, by name: the one registry (the default method is engine/config.py's)
METHODS: dict[str, Method] = {m.name: m for m in (CLOCK, HANDOFF, TBPTT)}


def method_named(name: str) -> Method:
    """A method's declaration; FreqtuiError names the methods there are."""
    if name not in METHODS:
        raise FreqtuiError(f"unknown method {name!r}: choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def method_names() -> list[str]:
    return sorted(METHODS)
