"""freqtui: the console (Textual app and CLI) over the engine."""

__version__ = "0.1.0"
