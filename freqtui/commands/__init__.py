"""One module per command of the command line: freqtui/cli.py parses the flags and calls
a function here with plain typed arguments (a RunConfig, paths, values). Each module
loads what its command needs when it runs, so `--help` and the quick commands load no
torch, numba or textual."""
