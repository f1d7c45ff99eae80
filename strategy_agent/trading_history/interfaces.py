"""Ports of the history layer."""

from __future__ import annotations

from abc import ABC, abstractmethod

from strategy_agent.models import HistoryRecord


class HistoryRecorder(ABC):
    """Append-only checkpoint log."""

    @abstractmethod
    def record(self, record: HistoryRecord) -> None: ...
