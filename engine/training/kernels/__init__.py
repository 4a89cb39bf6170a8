"""Fused training kernels, compiled with numba: `handoff` runs the hand-off's row-by-row
step (L = 1, state detached every row) over a block of rows per call."""
