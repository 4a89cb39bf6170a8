"""Fused training kernels, compiled with numba: `handoff` runs the hand-off's row-by-row
step (L = 1, state detached every row) over a block of rows per call; `window` runs a
full-BPTT step over a window of T rows for B streams (the clock's and tbptt's step)."""
