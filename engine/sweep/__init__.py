"""A sweep's science and state: its grid of cells (grid.py), one cell trained for a while
wherever it runs (cell.py), each cell's folder on disk (state.py) and the frozen-MSE
statistics over seeds (results.py). Nothing here imports Dask at module level: the
driver and the cluster are the console's (freqtui/commands/sweep/)."""
