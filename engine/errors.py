"""The one error type for things a user can fix."""


class FreqtuiError(Exception):
    """A user mistake or a bad file: the message says what to do, on one line."""


class TrainingDiverged(FreqtuiError):
    """The online loss became NaN or infinite."""
