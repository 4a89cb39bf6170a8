"""freqtui's engine: the science (data, model, trainers, evaluation, sessions).

Nothing here imports a UI package; the console and the CLI sit on top of it. Loading
the package loads `engine.methods`, which files every method's defaults and options with
`engine.config`; both are torch-free, so commands that train nothing start at once.
"""

from engine import methods  # noqa: F401  (registers the methods)
from engine.errors import FreqtuiError

__all__ = ["FreqtuiError"]
