"""`freqtui data --out DIR`: the train and test sets of a config as CSV files."""

from __future__ import annotations

from pathlib import Path

from engine.config import RunConfig
from engine.errors import FreqtuiError


def data(config: RunConfig, out: Path) -> int:
    """Write train.csv and test.csv of `config` into `out`, one line each."""
    from engine.signals import test_set, train_set, write_csv
    from engine.store.writable import check_out_folder

    # a read-only or full folder, a fifo or a link as train.csv: one line before any work
    check_out_folder(out, ["train.csv", "test.csv"], "--out", "CSV files")
    for name, signal in (("train", train_set(config)), ("test", test_set(config))):
        try:
            write_csv(signal, out / f"{name}.csv")
        except OSError as exc:
            raise FreqtuiError(
                f"{out / f'{name}.csv'}: not written ({exc.strerror or exc})"
            ) from None
        print(f"wrote {out / f'{name}.csv'}: {signal.n_blocks * signal.n_samples} rows")
    return 0
