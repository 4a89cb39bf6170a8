"""The run flags: each RunConfig field the command line sets, its flag, its type and its
help. freqtui/cli.py builds its parser from this table; a command that names a flag to
the user (a resume refusing `--lr`) reads the name here."""

from __future__ import annotations

# (RunConfig field, flag, type, help); "%s" in a help is its default, from RunConfig or,
# for lr, clip and epochs, from each method's declaration
FLAGS: list[tuple[str, str, type, str]] = [
    ("epochs", "--epochs", int, "epochs to train (%s)"),
    ("lr", "--lr", float, "Adam learning rate (%s)"),
    ("method", "--method", str, "training method (default %s; see `freqtui methods`)"),
    (
        "backend",
        "--backend",
        str,
        "fused (compiled) or torch (reference), where the method has it (default %s)",
    ),
    ("phase_scale", "--phase-scale", float, "phase noise scale (default %s: the task as written)"),
    ("duration", "--duration", float, "seconds of signal per block (default %s)"),
    ("fs", "--fs", float, "sampling rate in Hz (default %s)"),
    ("hidden_size", "--hidden", int, "LSTM hidden size (default %s)"),
    ("num_layers", "--layers", int, "LSTM layers (default %s)"),
    ("clip", "--clip", float, "gradient clipping by total norm, 0 = off (%s)"),
    ("torch_seed", "--seed", int, "seed of the weight init (default %s)"),
    ("train_seed", "--train-seed", int, "noise seed of the train set (default %s)"),
    ("test_seed", "--test-seed", int, "noise seed of the test set (default %s)"),
]
FIELDS = [f for f, *_ in FLAGS]
FLAG_OF = {f: flag for f, flag, *_ in FLAGS}
