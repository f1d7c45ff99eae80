"""Port of the feature layer."""

from __future__ import annotations

from abc import ABC, abstractmethod

from strategy_agent.models import Candle, FeatureVector


class FeatureComputer(ABC):
    """Turns candles into one ``FeatureVector`` per (symbol, interval)."""

    @abstractmethod
    def compute_features(self, candles: list[Candle]) -> list[FeatureVector]: ...
