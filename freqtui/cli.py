"""The command line: thin, it parses flags into a RunConfig and hands over.

freqtui [flags]                      open the console and train
freqtui --resume ID|PATH             open the console on a saved session
freqtui train --headless [flags]     train without the console
freqtui train --headless --resume ID|PATH [--epochs N]   continue a saved session
freqtui sessions [--json]            list the saved sessions
freqtui data --out DIR               write train.csv and test.csv
freqtui eval PATH|ID [--json]        frozen MSE of saved weights or a snapshot
freqtui report PATH|ID --out DIR     Graph 1, Graph 2 (PNG) and metrics.json

Sessions live in ./sessions/<run-id>/ unless --sessions DIR or $FREQTUI_SESSIONS says
otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from engine.config import BACKENDS, RunConfig
from engine.errors import FreqtuiError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        sys.stderr.write(f"freqtui: error: {message}\n")
        raise SystemExit(2)


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run configuration (defaults: SPEC §1-2)")
    g.add_argument("--epochs", type=int, help="epochs to train (default 1)")
    g.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    g.add_argument("--method", help="training method (see `freqtui methods`)")
    g.add_argument("--backend", choices=BACKENDS, help="fused (compiled) or torch (reference)")
    g.add_argument(
        "--phase-scale", type=float, help="phase noise scale (1.0 = the task as written)"
    )
    g.add_argument("--duration", type=float, help="seconds of signal per block (default 10)")
    g.add_argument("--fs", type=float, help="sampling rate in Hz (default 1000)")
    g.add_argument("--hidden", type=int, dest="hidden_size", help="LSTM hidden size (default 64)")
    g.add_argument("--layers", type=int, dest="num_layers", help="LSTM layers (default 1)")
    g.add_argument("--clip", type=float, help="gradient clipping by total norm (0 = off)")
    g.add_argument("--seed", type=int, dest="torch_seed", help="seed of the weight init")
    g.add_argument("--train-seed", type=int, help="noise seed of the train set (default 1)")
    g.add_argument("--test-seed", type=int, help="noise seed of the test set (default 2)")
    g.add_argument(
        "--option",
        "-O",
        type=_option,
        action="append",
        metavar="KEY=VALUE",
        help="a method-specific option (repeatable)",
    )


FIELDS = [
    "epochs",
    "lr",
    "method",
    "backend",
    "phase_scale",
    "duration",
    "fs",
    "hidden_size",
    "num_layers",
    "clip",
    "torch_seed",
    "train_seed",
    "test_seed",
]


def config_from(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    base = base or RunConfig()
    changes = {f: getattr(args, f) for f in FIELDS if getattr(args, f, None) is not None}
    if getattr(args, "option", None):
        changes["options"] = {**base.options, **dict(args.option)}
    elif "method" in changes and changes["method"] != base.method:
        changes["options"] = {}  # another method's options would not apply
    return base.replace(**changes).validated()


SESSIONS_HELP = "sessions folder (default: $FREQTUI_SESSIONS, else ./sessions)"
AUTOSAVE_ROWS = 20_000  # the least default autosave interval, in rows


def set_autosave(run, args: argparse.Namespace) -> None:
    """--autosave ROWS (0 = only at the end), or by default every half epoch and at least
    every AUTOSAVE_ROWS rows: a method that trains a whole window of rows per step (clock:
    80,000) would otherwise save after every step."""
    rows = getattr(args, "autosave", None)
    if rows is None:
        rows = max(AUTOSAVE_ROWS, run.trainer.rows_per_epoch // 2)
    run.autosave_every = rows or None


def add_sessions_flag(p: argparse.ArgumentParser, top: bool = False) -> None:
    # SUPPRESS on subcommands: `freqtui --sessions D train` must not be reset to None
    p.add_argument(
        "--sessions",
        type=Path,
        metavar="DIR",
        help=SESSIONS_HELP,
        **({} if top else {"default": argparse.SUPPRESS}),
    )


def add_autosave_flag(p: argparse.ArgumentParser, top: bool = False) -> None:
    p.add_argument(
        "--autosave",
        type=int,
        metavar="ROWS",
        help=(
            f"save a snapshot every ROWS rows (default: every half epoch, at least "
            f"{AUTOSAVE_ROWS:,} rows; 0 = only at the end)"
        ),
        default=None if top else argparse.SUPPRESS,
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="freqtui", description="Train stateful LSTMs to extract pure frequencies.")
    add_config_flags(p)
    p.add_argument("--resume", metavar="ID|PATH", help="resume a saved session in the console")
    add_sessions_flag(p, top=True)
    add_autosave_flag(p, top=True)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train (with --headless: without the console)")
    add_config_flags(t)
    t.add_argument("--headless", action="store_true", help="no console: progress on stdout")
    t.add_argument("--out", type=Path, help="save the trained weights here")
    t.add_argument("--resume", metavar="ID|PATH", help="continue a saved session")
    add_sessions_flag(t)
    add_autosave_flag(t)

    d = sub.add_parser("data", help="write the train and test sets as CSV")
    add_config_flags(d)
    d.add_argument("--out", type=Path, required=True, help="folder for train.csv and test.csv")

    e = sub.add_parser("eval", help="frozen MSE of saved weights or a snapshot")
    e.add_argument("path", metavar="PATH|ID", help="a weights file, a snapshot or a session id")
    e.add_argument("--json", action="store_true", help="print JSON")
    add_sessions_flag(e)

    s = sub.add_parser("sessions", help="list the saved sessions")
    s.add_argument("--json", action="store_true", help="print JSON")
    add_sessions_flag(s)

    r = sub.add_parser("report", help="Graph 1 and Graph 2 as PNG, and metrics.json")
    r.add_argument("path", metavar="PATH|ID", help="a snapshot, a weights file or a session id")
    r.add_argument("--out", type=Path, required=True, help="folder for the report files")
    add_sessions_flag(r)

    sub.add_parser("methods", help="list the training methods")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except FreqtuiError as exc:
        sys.stderr.write(f"freqtui: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("freqtui: interrupted\n")
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "data":
        return cmd_data(args)
    if args.command == "eval":
        return cmd_eval(args)
    if args.command == "sessions":
        return cmd_sessions(args)
    if args.command == "report":
        from freqtui.report import cmd_report

        return cmd_report(args)
    if args.command == "methods":
        from engine.training import get_method, method_names

        for name in method_names():
            print(f"{name:12s} {get_method(name).description}")
        return 0
    if args.command == "train" and args.headless:
        from freqtui.headless import train_headless

        return train_headless(args)
    config = config_from(args)  # bad flags fail here, before the console opens
    from freqtui.app import run_app

    return run_app(args, config)


def cmd_data(args: argparse.Namespace) -> int:
    from engine.signals import test_set, train_set, write_csv

    config = config_from(args)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise FreqtuiError(f"{out}: exists and is not a folder")
    for name, signal in (("train", train_set(config)), ("test", test_set(config))):
        write_csv(signal, out / f"{name}.csv")
        print(f"wrote {out / f'{name}.csv'}: {signal.n_blocks * signal.n_samples} rows")
    return 0


def eval_table(train, test, frequencies) -> str:
    """The frozen-MSE table, labelled as what it is."""
    heads = "".join(f"{f'f={f:g} Hz':>10}" for f in frequencies)
    lines = [f"{'frozen MSE (weights fixed)':28}{'overall':>10}{heads}"]
    for label, m in (("train (seed set 1)", train), ("test  (seed set 2)", test)):
        cells = "".join(f"{v:10.4f}" for v in m.per_block)
        lines.append(f"  {label:26}{m.overall:10.4f}{cells}")
    return "\n".join(lines)


def eval_json(path: Path, config, result) -> dict[str, Any]:
    """What `eval --json` prints and `report` writes as metrics.json: frozen MSE only."""
    return {
        "path": str(path),
        "kind": "frozen_mse",
        "train": result.train.to_dict(),
        "test": result.test.to_dict(),
        "frequencies": list(config.frequencies),
        "config": config.to_dict(),
    }


def resolve_path(args: argparse.Namespace) -> Path:
    """The file a PATH|ID argument names, sessions looked up in --sessions."""
    from engine.sessions import resolve, sessions_dir

    return resolve(args.path, sessions_dir(getattr(args, "sessions", None)))


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.evaluation import evaluate
    from engine.sessions import load_model

    path = resolve_path(args)
    config, model = load_model(path)
    result = evaluate(model, config)
    if args.json:
        print(json.dumps(eval_json(path, config, result), indent=2))
    else:
        print(f"{path}: method {config.method}, phase scale {config.phase_scale:g}")
        print(eval_table(result.train, result.test, config.frequencies))
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    from engine.sessions import list_sessions, sessions_dir

    root = sessions_dir(getattr(args, "sessions", None))
    infos = list_sessions(root)
    if args.json:
        rows = [
            {**{k: v for k, v in vars(i).items() if k != "path"}, "path": str(i.path)}
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not infos:
        print(f"no sessions in {root}")
        return 0
    print(sessions_table(infos))
    return 0


def sessions_table(infos) -> str:
    """The session list; the MSE columns are the last frozen evaluation (weights fixed)."""

    def mse(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    width = max(24, *(len(i.id) for i in infos))
    lines = [
        f"{'id':{width}}  {'method':10} {'epoch':>7} {'row':>15}  "
        f"{'frozen MSE train':>16} {'test':>8}  saved at"
    ]
    for i in infos:
        if i.error:
            lines.append(f"{i.id:{width}}  unreadable: {i.error}")
            continue
        done = " done" if i.finished else ""
        lines.append(
            f"{i.id:{width}}  {i.method:10} {f'{i.epoch}/{i.epochs}':>7} "
            f"{f'{i.row:,}/{i.rows_per_epoch:,}':>15}  {mse(i.frozen_mse_train):>16} "
            f"{mse(i.frozen_mse_test):>8}  {i.saved_at}{done}"
        )
    return "\n".join(lines)


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    s = int(s)
    return (
        f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
