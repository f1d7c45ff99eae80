"""Ports of the data layer: where candles and market rules come from."""

from __future__ import annotations

from abc import ABC, abstractmethod

from strategy_agent.models import Candle, MarketRules


class MarketDataSource(ABC):
    """Recent *closed* candles, oldest first, as of the source's clock."""

    @abstractmethod
    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        """Return up to ``lookback`` closed candles per symbol, oldest first.

        Raises ``DataUnavailableError`` (retryable) when data cannot be had now.
        """

    @abstractmethod
    def available_symbols(self) -> list[str]:
        """Symbols this source can serve."""


class MarketRulesProvider(ABC):
    """Market rules (lot size, minimum notional...) as data for the guardrails."""

    @abstractmethod
    def rules_for(self, symbol: str) -> MarketRules:
        """Rules of ``symbol``; raises ``ConfigurationError`` for an unknown symbol."""


class ClosedCandles(list[Candle]):
    """A source's answer that vouches for itself: every candle closed at ``closed_at``
    (epoch ms), and ``latest`` the newest candle of each symbol, in the order the
    symbols come. To any reader a plain list; the cycle's helpers
    (``cycle_records.closed_candles``...) read the two facts instead of scanning it.
    """

    def __init__(self, candles: list[Candle], *, closed_at: int, latest: dict[str, Candle]):
        super().__init__(candles)
        self.closed_at = closed_at
        self.latest = latest
