"""Every training method's declaration: its description, its own lr, clip and epochs, its
`-O` options with their defaults, its backends and its option check. The one home of
each; filed with engine/config.py when the `engine` package loads.

Torch-free on purpose: `freqtui --help`, `freqtui methods` and every flag check read these
without loading torch (issue 20). The trainers in engine/training/ take their options
from here; a new method is declared here and its Trainer listed in engine/training/.
"""

from __future__ import annotations

import math
from typing import Any

from engine.config import MethodDefaults, RunConfig, register_method
from engine.errors import FreqtuiError


def check_option_names(method: str, declared: dict[str, Any], config: RunConfig) -> None:
    """Raise FreqtuiError for option names `method` does not have."""
    unknown = set(config.options) - set(declared)
    if unknown:
        takes = f"it takes: {', '.join(declared)}" if declared else "it takes none"
        raise FreqtuiError(f"method {method!r} has no option {', '.join(sorted(unknown))}; {takes}")


# ---- handoff ------------------------------------------------------------------------------
def _validate_handoff(config: RunConfig) -> None:
    check_option_names("handoff", {}, config)


HANDOFF = MethodDefaults(
    name="handoff",
    description="the hand-off's pattern: L=1, batch 1, state detached every row (SPEC §2)",
    lr=1e-3,
    clip=0.0,
    epochs=1,
    options={},
    backends=("torch", "fused"),
    validate=_validate_handoff,
)


# ---- tbptt --------------------------------------------------------------------------------
TBPTT_OPTIONS: dict[str, Any] = {
    "k": 200,
    "reset": "block",
    "noise": "fresh",
    "noise_seed": 1000,
}


def _validate_tbptt(config: RunConfig) -> None:
    check_option_names("tbptt", TBPTT_OPTIONS, config)
    o = {**TBPTT_OPTIONS, **config.options}
    try:
        k, seed = int(o["k"]), int(o["noise_seed"])
    except (TypeError, ValueError) as exc:
        raise FreqtuiError(f"tbptt options k and noise_seed must be integers: {exc}") from exc
    if k < 1:
        raise FreqtuiError(f"tbptt option k must be >= 1, got {k}")
    if str(o["reset"]) not in ("block", "carry"):
        raise FreqtuiError(f"tbptt option reset must be block or carry, got {o['reset']!r}")
    if str(o["noise"]) not in ("train", "fresh"):
        raise FreqtuiError(f"tbptt option noise must be train or fresh, got {o['noise']!r}")
    if seed < 0:
        raise FreqtuiError(f"tbptt option noise_seed must be >= 0, got {seed}")


TBPTT = MethodDefaults(
    name="tbptt",
    description="truncated BPTT: rows in time order, gradients through the last K rows",
    lr=1e-3,
    clip=1.0,
    epochs=1,
    options=TBPTT_OPTIONS,
    backends=("torch", "fused"),
    validate=_validate_tbptt,
)


# ---- clock --------------------------------------------------------------------------------
CLOCK_OPTIONS: dict[str, Any] = {
    "t0": 1000,
    "k0": 3.0,
    "slide_from": 3.0,
    "slide": 1.15,
    "grow": 2.0,
    "thr": 0.04,
    "min_steps": 30,
    "patience": 300,
    "retries": 1,
    "min_lr_mult": 0.0625,
    "trap": 0.1,
    "first_steps": 2500,
    "lr_pow": 1.0,
    "draws": 2,
    "amp0": 0.0,
    "amp_step": 1.0,
    "s_gate": 1,
    "stage_lr_reset": 0,
    "s_decay": 1e-3,
    "block_weight": 1.0,
    "forget_bias": 3.0,
    "noise_seed": 1000,
    "val_seed": 3,
    "val_every": 10,
    "rollback": 2.0,
    "select": 1,
    "epoch_sets": 50,
    "polish": 10,
    "anneal": 1,
}
CLOCK_INTS = (
    "t0", "min_steps", "patience", "retries", "first_steps", "draws", "noise_seed",
    "val_seed", "val_every", "select", "epoch_sets", "polish", "anneal", "s_gate", "stage_lr_reset",
)  # fmt: skip


def clock_options(config: RunConfig) -> dict[str, Any]:
    """The clock's options with their defaults, as numbers (ints where they count)."""
    o = {**CLOCK_OPTIONS, **config.options}
    out: dict[str, Any] = {}
    for k, v in o.items():
        try:
            out[k] = int(v) if k in CLOCK_INTS else float(v)
        except (TypeError, ValueError, OverflowError) as exc:
            raise FreqtuiError(f"clock option {k} must be a number, got {v!r}") from exc
    return out


def _validate_clock(config: RunConfig) -> None:
    check_option_names("clock", CLOCK_OPTIONS, config)
    o = clock_options(config)
    for k in ("t0", "min_steps", "draws", "epoch_sets", "val_every", "polish"):
        if o[k] < 1:
            raise FreqtuiError(f"clock option {k} must be >= 1, got {o[k]}")
    for k in ("anneal", "select", "s_gate", "stage_lr_reset"):
        if o[k] not in (0, 1):
            raise FreqtuiError(f"clock option {k} must be 0 or 1, got {o[k]}")
    for k, v in o.items():
        if not math.isfinite(v):
            raise FreqtuiError(f"clock option {k} must be finite, got {v}")
    for k in ("grow", "slide"):
        if o[k] <= 1:
            raise FreqtuiError(f"clock option {k} must be > 1, got {o[k]}")
    for k in ("k0", "slide_from"):
        if o[k] <= 0:
            raise FreqtuiError(f"clock option {k} must be > 0, got {o[k]}")
    if not 0 <= o["amp0"] <= 1:
        raise FreqtuiError(f"clock option amp0 must be in [0, 1], got {o['amp0']}")
    if not 0 < o["min_lr_mult"] <= 1:
        raise FreqtuiError(f"clock option min_lr_mult must be in (0, 1], got {o['min_lr_mult']}")
    for k in ("thr", "amp_step", "s_decay", "block_weight", "lr_pow", "noise_seed",
              "patience", "rollback", "forget_bias", "trap", "first_steps", "retries"):  # fmt: skip
        if o[k] < 0:
            raise FreqtuiError(f"clock option {k} must be >= 0, got {o[k]}")
    if o["amp_step"] <= 0:
        raise FreqtuiError("clock option amp_step must be > 0")
    if o["val_seed"] in (config.train_seed, config.test_seed) or o["val_seed"] < 0:
        raise FreqtuiError(
            f"clock option val_seed must be a seed of its own (>= 0, not the train seed "
            f"{config.train_seed} or the test seed {config.test_seed}), got {o['val_seed']}"
        )


CLOCK = MethodDefaults(
    name="clock",
    description=(
        "full BPTT from t=0 through per-block windows that slide from 3 Hz down to each "
        "block's frequency and grow to the whole block, then S at full amplitude, then a "
        "polish of its own that keeps the best weights on a validation draw"
    ),
    # epochs: a cap on the whole run; the polish has a budget of its own (`polish`)
    lr=3e-3,
    clip=1.0,
    epochs=60,
    options=CLOCK_OPTIONS,
    backends=("torch", "fused"),
    validate=_validate_clock,
)

for _method in (HANDOFF, TBPTT, CLOCK):
    register_method(_method)
