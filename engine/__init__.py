"""freqtui's engine: the science (data, model, trainers, evaluation, sessions).

Nothing here imports a UI package; the console and the CLI sit on top of it. The
training methods are declared in `engine.methods` (no torch); their trainers load with
`engine.training`, where a run needs them.
"""

from engine.errors import FreqtuiError

__all__ = ["FreqtuiError"]
