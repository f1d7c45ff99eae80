"""The ports the decision cycle talks through (small protocols; no adapter is imported).

``DecisionCoordinator`` (``strategy_agent.core``) needs these of the ledger,
the digest, the history store, the exchange's snapshot, the funding of paper
swaps and the source of the portfolio view; ``strategy_agent.factory`` wires the concrete classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from strategy_agent.cycle_records import RecordReader
from strategy_agent.models import (
    EquityPoint,
    Fill,
    HistoryRecord,
    PortfolioView,
    TradeDigest,
    TradeHistoryEntry,
)
from strategy_agent.portfolio.funding import FundingPayment


class Book(Protocol):
    """What the coordinator needs of the ledger (``portfolio.ledger.Ledger``)."""

    def mark(self, prices: dict[str, float], ts: int) -> None: ...
    def get_view(self, ts: int | None = None) -> PortfolioView: ...
    def apply(self, fill: Fill, enforce: bool = True) -> Any: ...
    def equity_point(self, ts: int) -> EquityPoint: ...
    def apply_funding(self, payment: FundingPayment) -> None: ...
    def quantity(self, symbol: str) -> float: ...
    def contract_size(self, symbol: str) -> float: ...
    @property
    def funding_paid(self) -> float: ...


@dataclass
class AccountSync:
    """What the account said before a cycle (``PortfolioSource.sync``).

    ``fills``: to apply to the ledger, in order, and write with the cycle
    (fills of orders a crash left unrecorded, adjustments to what the exchange
    holds); ``payload``: the cycle's ``account`` record, ``None`` when there is
    nothing to record.
    """

    fills: list[Fill] = field(default_factory=list)
    payload: dict[str, Any] | None = None


class PortfolioSource(Protocol):
    """Where a cycle's portfolio view comes from: the ledger on paper, the exchange on
    testnet and live (``portfolio.exchange_view``)."""

    def cycle_id(self, compose_id: str) -> str: ...
    def sync(self, ts: int, closes: dict[str, float], compose_id: str) -> AccountSync: ...
    def view(self, ts: int) -> PortfolioView: ...


class QuoteSource(Protocol):
    """The exchange's snapshot per symbol (``CcxtMarketDataSource.snapshot``)."""

    def snapshot(self, symbols: list[str]) -> dict[str, dict[str, float]]: ...


class Funding(Protocol):
    """Funding payments of paper swaps (``portfolio.funding.FundingAccrual``)."""

    def due(
        self,
        now_ms: int,
        quotes: dict[str, dict[str, float]],
        positions: dict[str, tuple[float, float]],
        closes: dict[str, float],
    ) -> list[FundingPayment]: ...
    def commit(self, quotes: dict[str, dict[str, float]], now_ms: int | None = None) -> None: ...


class Digest(Protocol):
    """What the coordinator needs of the incremental digest."""

    def update(self, fill: Fill, closed_trades: list[TradeHistoryEntry]) -> None: ...
    def digest(self, ts: int) -> TradeDigest: ...


class CycleStore(RecordReader, Protocol):
    """What the coordinator needs of the history store (``records``: the feedback on resume)."""

    def write_cycle(
        self,
        strategy_id: str,
        records: list[HistoryRecord],
        fills: list[Fill],
        trades: list[TradeHistoryEntry],
        equity: EquityPoint | None,
    ) -> None: ...
