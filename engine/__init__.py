"""freqtui's engine: the science (data, model, trainers, evaluation, sessions).

Nothing here imports a UI package; the console and the CLI sit on top of it.
"""

from engine.errors import FreqtuiError

__all__ = ["FreqtuiError"]
