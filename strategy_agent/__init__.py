"""Strategy Agent: plain-text trading strategies turned into guarded trades."""

__version__ = "0.1.0"
