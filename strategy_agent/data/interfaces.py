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
