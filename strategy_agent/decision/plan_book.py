"""The book a plan's accepted orders leave, and the trading costs the guardrails reserve.

Quantities are signed base units (contracts); a unit value is price x contract
size in quote currency; equity and cash are in quote currency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.data.market_rules import contract_size_of
from strategy_agent.decision.guardrail_checks import is_open
from strategy_agent.models import PortfolioView, Side


@dataclass
class PlanBook:
    """Positions, spot cash and equity as the plan's accepted orders leave them."""

    positions: dict[str, float]
    unit_values: dict[str, float]
    equity: float
    cost_equity: float  # equity minus this plan's fees and slippage so far
    cash: float
    # Per symbol traded in this plan: how much valuing it at its fill price may
    # add to gross exposure and take from equity.
    remarks: dict[str, float] = field(default_factory=dict)

    def qty(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)

    def gross(self) -> float:
        return sum(abs(q) * self.unit_values.get(s, 0.0) for s, q in self.positions.items())

    def net(self) -> float:
        return sum(q * self.unit_values.get(s, 0.0) for s, q in self.positions.items())

    def open_symbols(self) -> list[str]:
        return [s for s, q in self.positions.items() if is_open(q)]

    def remark_total(self) -> float:
        return sum(self.remarks.values())

    def copy(self) -> PlanBook:
        """A copy whose positions and remarks can change alone (unit values are shared).

        Written out: ``dataclasses.replace`` scans the fields on every call.
        """
        return PlanBook(
            dict(self.positions),
            self.unit_values,
            self.equity,
            self.cost_equity,
            self.cash,
            dict(self.remarks),
        )


@dataclass(frozen=True)
class TradingCosts:
    """Fee and slippage as fractions (from bps)."""

    fee: float
    slippage: float

    def cash_per_unit(self, side: Side, unit_value: float) -> float:
        """Cash paid (buy, positive) or received (sell, negative) per unit."""
        if side == "buy":
            return unit_value * (1 + self.slippage) * (1 + self.fee)
        return -unit_value * (1 - self.slippage) * (1 - self.fee)

    def rates(self) -> tuple[float, float]:
        """Equity lost per unit of notional traded: (buy, sell)."""
        buy = (1 + self.slippage) * (1 + self.fee) - 1
        sell = 1 - (1 - self.slippage) * (1 - self.fee)
        return buy, sell


def book_from(
    portfolio: PortfolioView,
    prices: dict[str, float],
    rules: MarketRulesProvider,
    symbols: list[str],
) -> PlanBook:
    """The book at the start of a plan: positions, unit values (price x contract size), equity."""
    positions = {s: p.quantity for s, p in portfolio.positions.items()}
    unit_values: dict[str, float] = {}
    for symbol in set(positions) | set(symbols):
        price = prices.get(symbol)
        if price is None or not (math.isfinite(price) and price > 0):
            snapshot = portfolio.positions.get(symbol)
            price = (snapshot.mark_price or snapshot.avg_price or 0.0) if snapshot else 0.0
        unit_values[symbol] = price * contract_size_of(rules, symbol)
    equity = portfolio.total_value
    if equity is None:
        equity = portfolio.cash + sum(q * unit_values[s] for s, q in positions.items())
    cash = portfolio.available_cash if portfolio.available_cash is not None else portfolio.cash
    return PlanBook(positions, unit_values, equity, equity, cash)
