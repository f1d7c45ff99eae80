"""Ports of the portfolio layer."""

from __future__ import annotations

from abc import ABC, abstractmethod

from strategy_agent.models import PortfolioView


class PortfolioService(ABC):
    """Current portfolio as the composer sees it."""

    @abstractmethod
    def get_view(self) -> PortfolioView: ...


class PortfolioSnapshotStore(ABC):
    """Persisted portfolio snapshots (design port; resume replays fills instead,
    so the ledger stays the one owner of positions and cash)."""

    @abstractmethod
    def load_latest(self) -> PortfolioView | None: ...

    @abstractmethod
    def save(self, view: PortfolioView) -> None: ...
