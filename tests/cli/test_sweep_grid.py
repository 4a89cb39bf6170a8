"""A sweep's cell trains exactly what the single run's command line with the cell's
values would train: `freqtui sweep [flags] --grid KEY=V1,V2 --seeds S` gives each cell
the RunConfig of `freqtui train [flags] --KEY V --seed S` (or `-O KEY=V` for a method's
option), without parsing the command line again for every cell."""

from __future__ import annotations

import pytest

from engine.errors import FreqtuiError
from engine.sweep.grid import make_cells, parse_seeds
from freqtui.cli import base_config, build_parser, config_from, grid_axes, run_changes
from freqtui.flags import FLAGS  # noqa: E402

FLAG_OF_KEY = {flag[2:]: flag for _, flag, *_ in FLAGS}


def cells_of(argv: list[str]):
    args = build_parser().parse_args(["sweep", *argv])
    given = [f for f in run_changes(args) if f != "options"]
    axes = grid_axes(args.grid or [])
    return make_cells(axes, parse_seeds(args.seeds), base_config(args), given)


def single_run(flags: list[str], cell) -> object:
    argv = ["train", *flags]
    for key, value in cell.values.items():
        argv += [FLAG_OF_KEY[key], value] if key in FLAG_OF_KEY else ["-O", f"{key}={value}"]
    return config_from(build_parser().parse_args([*argv, "--seed", str(cell.seed)]))


@pytest.mark.parametrize(
    "flags, grid",
    [
        # a method of the grid takes its own lr, clip and epochs, but keeps the sweep's --lr
        (["--lr", "0.002", "--duration", "0.5"], ["method=clock,tbptt,handoff"]),
        # the sweep's method and its option, another method's in the grid, run flags too
        (["--method", "tbptt", "-O", "k=50"], ["k=20,80", "phase-scale=1,0.01"]),
        (["--method", "tbptt", "--epochs", "3"], ["method=clock,tbptt", "hidden=16,32"]),
        (["--backend", "torch", "--seed", "9"], ["clip=0,1.5", "train-seed=4,5"]),
        ([], ["layers=1,2", "test-seed=5"]),
    ],
)
def test_each_cell_has_the_config_of_the_single_run_with_its_values(flags, grid):
    argv = list(flags)
    for item in grid:
        argv += ["--grid", item]
    cells = cells_of([*argv, "--seeds", "0-1"])
    assert len(cells) >= 2
    for cell in cells:
        assert cell.config == single_run(flags, cell), cell.name
    # the grid's values reach the configs (the test can fail)
    assert len({repr(c.config) for c in cells if c.seed == 0}) == len(cells) // 2


def test_a_method_change_in_the_grid_keeps_the_sweeps_lr_and_takes_its_own_epochs():
    cells = cells_of(["--lr", "0.002", "--grid", "method=clock,handoff"])
    by_method = {c.config.method: c.config for c in cells}
    assert by_method["clock"].lr == by_method["handoff"].lr == 0.002
    assert (
        by_method["handoff"].epochs
        == config_from(build_parser().parse_args(["train", "--method", "handoff"])).epochs
    )


def test_a_bad_value_in_the_grid_names_its_key_and_its_cell():
    with pytest.raises(FreqtuiError, match="--grid phase-scale: invalid float value: 'x'"):
        cells_of(["--grid", "phase-scale=1,x"])
    with pytest.raises(FreqtuiError, match=r"grid cell \{'method': 'nope'\}"):
        cells_of(["--grid", "method=handoff,nope"])
