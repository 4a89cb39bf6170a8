"""freqtui's engine: the science (data, model, trainers, evaluation, sessions).

Nothing here imports a UI package; the console and the CLI sit on top of it. Loading
the package loads `engine.training`, which files every method's defaults and options
with `engine.config` (the config itself imports no trainer).
"""

from engine import training  # noqa: F401  (registers the methods)
from engine.errors import FreqtuiError

__all__ = ["FreqtuiError"]
