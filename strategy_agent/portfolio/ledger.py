"""The ledger: cash, positions and P&L of ONE strategy, the one owner of those facts.

Accounting convention (a cash-settled book, floats handled with care):

- Quantities are in contracts (the market's order unit: base units on spot);
  ``cs`` is the symbol's contract size from the market rules (1 without rules).
  Money is in the quote currency: ``q`` contracts at ``p`` are worth
  ``notional(q, p, cs) = q * cs * p`` (``market_rules.notional``).
- Buying ``q`` at ``p`` pays ``q * cs * p`` from cash; selling (or shorting) ``q``
  at ``p`` receives ``q * cs * p``. Fees are always paid from cash. Cash may go
  negative on margin/swap (borrowed), never on spot.
- A position is a signed quantity (negative is short) valued at
  ``quantity * cs * mark_price``. Hence, always::

      equity = cash + sum(quantity * cs * mark)
             = initial_capital + realized_pnl + unrealized_pnl - fees_paid

             (- funding_paid, on swaps)

  where ``realized_pnl`` is before fees,
  ``unrealized_pnl = sum((mark - avg_price) * quantity * cs)`` and
  ``funding_paid`` the net funding of perpetual swaps (``apply_funding``; paid
  is positive, earned negative; see ``portfolio.funding``).
- Entry price is the weighted average of the opening fills. A reduction realizes
  ``(exit - avg) * closed * cs`` for a long and ``(avg - exit) * closed * cs`` for
  a short and keeps ``avg_price``. A flip (long to short or back in one fill) closes the
  whole position, then opens the remainder at the fill price. A position whose
  quantity returns to zero (within ``1e-12`` of the fill's size) is removed.
- A funding payment moves cash only (not the position, its P&L or its trade).
- Every fill marks its position at the fill price; ``mark()`` moves marks to
  market prices. After ``replay()`` the marks are the last fill prices until the
  next ``mark()``; everything else equals the ledger that applied the fills live.
- A round trip (``TradeHistoryEntry``) runs from the fill that opens a position
  from flat to the fill that returns it to flat or flips it. A flip fill's fee
  is split pro rata between the trade it closes and the trade it opens. Its
  ``realized_pnl_pct`` is net of the trade's fees (``metrics.trade_net_pnl_pct``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from strategy_agent.data.interfaces import MarketRulesProvider
from strategy_agent.data.market_rules import contract_size_of, notional
from strategy_agent.errors import InsufficientFundsError
from strategy_agent.models import EquityPoint, Fill, PortfolioView, Side, TradeHistoryEntry
from strategy_agent.portfolio.funding import FundingPayment
from strategy_agent.portfolio.interfaces import PortfolioService
from strategy_agent.portfolio.ledger_checks import (
    MONEY_EPSILON,
    QTY_EPSILON,
    dust,
    invalid_numbers,
    leverage_reason,
    spot_reason,
)
from strategy_agent.portfolio.positions import PositionState, opened_position, round_trip, snapshot

LedgerMarket = Literal["spot", "margin", "swap"]
__all__ = ["MONEY_EPSILON", "QTY_EPSILON", "AppliedFill", "Ledger", "LedgerMarket"]


@dataclass(frozen=True)
class AppliedFill:
    """What ``Ledger.apply`` did: the fill with its realized P&L, and the trades it closed."""

    fill: Fill
    closed_trades: list[TradeHistoryEntry] = field(default_factory=list)


class Ledger(PortfolioService):
    """Cash and positions of one strategy; every derived number is computed from them.

    ``rules`` give each symbol's contract size (1 for every symbol without them,
    and for a symbol they do not know, as the guardrails count it).
    """

    def __init__(
        self,
        initial_capital: float,
        market_type: LedgerMarket = "spot",
        max_leverage: float = 1.0,
        strategy_id: str = "",
        rules: MarketRulesProvider | None = None,
    ) -> None:
        if not (math.isfinite(initial_capital) and initial_capital > 0):
            raise ValueError(f"initial_capital must be a finite number > 0, got {initial_capital}")
        if market_type not in get_args(LedgerMarket):
            raise ValueError(f"market_type must be spot, margin or swap, got {market_type!r}")
        if not (math.isfinite(max_leverage) and max_leverage > 0):
            raise ValueError(f"max_leverage must be a finite number > 0, got {max_leverage}")
        self._initial_capital = float(initial_capital)
        self.market_type: LedgerMarket = market_type
        self.max_leverage = float(max_leverage)
        self.strategy_id = strategy_id
        self.rules = rules
        self._contract_sizes: dict[str, float] = {}
        self._cash = float(initial_capital)
        self._realized_pnl = 0.0
        self._fees_paid = 0.0
        self._funding_paid = 0.0
        self._positions: dict[str, PositionState] = {}
        self._last_ts = 0

    # -- state ------------------------------------------------------------------------

    @property
    def initial_capital(self) -> float:
        return self._initial_capital

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def realized_pnl(self) -> float:
        """Realized P&L of every fill so far, before fees."""
        return self._realized_pnl

    @property
    def fees_paid(self) -> float:
        return self._fees_paid

    @property
    def funding_paid(self) -> float:
        """Net funding of swaps so far, quote currency: paid is positive, earned negative."""
        return self._funding_paid

    @property
    def positions(self) -> dict[str, PositionState]:
        """Open positions by symbol (a copy; the states themselves are immutable)."""
        return dict(self._positions)

    @property
    def equity(self) -> float:
        return self._cash + self.net_exposure

    @property
    def unrealized_pnl(self) -> float:
        return sum(p.unrealized_pnl for p in self._positions.values())

    @property
    def gross_exposure(self) -> float:
        return sum(abs(p.notional) for p in self._positions.values())

    @property
    def net_exposure(self) -> float:
        return sum(p.notional for p in self._positions.values())

    def quantity(self, symbol: str) -> float:
        """Signed quantity held in ``symbol``, in contracts (0 when flat)."""
        position = self._positions.get(symbol)
        return position.quantity if position else 0.0

    def contract_size(self, symbol: str) -> float:
        """Base units per contract of ``symbol`` (from the rules, looked up once)."""
        size = self._contract_sizes.get(symbol)
        if size is None:
            size = self._contract_sizes[symbol] = contract_size_of(self.rules, symbol)
        return size

    def notional(self, symbol: str, quantity: float, price: float) -> float:
        """Quote-currency value of ``quantity`` contracts of ``symbol`` at ``price`` (signed)."""
        return notional(quantity, price, self.contract_size(symbol))

    # -- marking ----------------------------------------------------------------------

    def mark(self, prices: dict[str, float], ts: int) -> None:
        """Move marks of held symbols to ``prices``; others keep their last mark."""
        for symbol, price in prices.items():
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"mark price of {symbol} must be a finite number > 0, got {price}")
        for symbol, price in prices.items():
            position = self._positions.get(symbol)
            if position is not None and position.mark_price != price:  # a cycle marks twice
                self._positions[symbol] = position.marked(float(price))
        self._last_ts = max(self._last_ts, int(ts))

    # -- checking and applying fills ----------------------------------------------------

    def check(
        self, symbol: str, side: Side, quantity: float, price: float, fee: float
    ) -> str | None:
        """The reason a fill cannot be applied, or ``None`` when it can."""
        invalid = invalid_numbers(symbol, side, quantity, price, fee)
        if invalid:
            return invalid
        old_qty = self.quantity(symbol)
        signed = quantity if side == "buy" else -quantity
        new_qty = old_qty + signed
        new_cash = self._cash - self.notional(symbol, signed, price) - fee
        if self.market_type == "spot":
            return spot_reason(symbol, side, quantity, old_qty, new_qty, self._cash, new_cash)
        if abs(new_qty) <= abs(old_qty) * (1 + MONEY_EPSILON):
            return None  # reducing risk is always allowed
        others = (p.notional for s, p in self._positions.items() if s != symbol)
        new_notional = self.notional(symbol, new_qty, price)
        return leverage_reason(
            symbol, side, quantity, others, new_notional, new_cash, self.max_leverage
        )

    def apply(self, fill: Fill, enforce: bool = True) -> AppliedFill:
        """Apply one fill; returns it with ``realized_pnl`` set, plus the trades it closed.

        With ``enforce`` a fill that ``check`` refuses raises ``InsufficientFundsError``
        and changes nothing. ``enforce=False`` is for fills that already happened
        (an exchange's report, a replay).
        """
        if enforce:
            reason = self.check(fill.symbol, fill.side, fill.quantity, fill.price, fill.fee)
            if reason:
                raise InsufficientFundsError(reason)
        signed = fill.quantity if fill.side == "buy" else -fill.quantity
        self._cash -= self.notional(fill.symbol, signed, fill.price) + fill.fee
        self._fees_paid += fill.fee
        self._last_ts = max(self._last_ts, fill.ts)
        position = self._positions.get(fill.symbol)
        if position is None or (position.quantity > 0) == (signed > 0):
            size = self.contract_size(fill.symbol)
            self._positions[fill.symbol] = opened_position(position, fill, signed, size)
            return AppliedFill(fill.model_copy(update={"realized_pnl": 0.0}))
        return self._reduce(position, fill, signed)

    def _reduce(self, position: PositionState, fill: Fill, signed: float) -> AppliedFill:
        """Apply a fill against the position's direction: reduce, close or flip."""
        held = abs(position.quantity)
        direction = 1.0 if position.quantity > 0 else -1.0
        dust_qty = dust(held, fill.quantity)
        closed_qty = min(fill.quantity, held)
        remainder = fill.quantity - closed_qty
        if remainder <= dust_qty:  # a close "too big" by float dust is still a close
            remainder = 0.0
        realized = position.pnl_at(fill.price, closed_qty * direction)
        close_fee = fill.fee * closed_qty / fill.quantity if remainder > 0 else fill.fee
        self._realized_pnl += realized
        new_qty = position.quantity + signed if remainder == 0 else 0.0
        reduced = replace(
            position,
            quantity=new_qty,
            mark_price=fill.price,
            realized_pnl=position.realized_pnl + realized,
            fees=position.fees + close_fee,
            closed_qty=position.closed_qty + closed_qty,
            closed_notional=position.closed_notional + closed_qty * fill.price,
        )
        applied = fill.model_copy(update={"realized_pnl": realized})
        if abs(new_qty) > dust_qty:
            self._positions[fill.symbol] = reduced
            return AppliedFill(applied)
        del self._positions[fill.symbol]
        trade = round_trip(reduced, fill, self.strategy_id, long=direction > 0)
        if remainder > 0:
            opening = fill.model_copy(update={"quantity": remainder, "fee": fill.fee - close_fee})
            self._positions[fill.symbol] = opened_position(
                None, opening, -direction * remainder, position.contract_size
            )
        return AppliedFill(applied, [trade])

    def apply_funding(self, payment: FundingPayment) -> None:
        """Settle one funding payment: cash moves by ``-payment.amount`` (paid is positive).

        Raises ``ValueError`` for a non-finite amount, and on a book that is not a
        swap account: only perpetual swaps pay funding (a spot book paying it could
        end with negative cash, which spot cannot have).
        """
        if self.market_type != "swap":
            raise ValueError(
                f"funding of {payment.symbol} on a {self.market_type} book: only perpetual "
                f"swaps pay funding"
            )
        if not math.isfinite(payment.amount):
            raise ValueError(f"funding of {payment.symbol} must be finite, got {payment.amount}")
        self._cash -= payment.amount
        self._funding_paid += payment.amount
        self._last_ts = max(self._last_ts, payment.ts)

    # -- views ----------------------------------------------------------------------------

    def get_view(self, ts: int | None = None) -> PortfolioView:
        """The portfolio as the composer sees it (at ``ts``, else the last fill/mark time).

        ``notional`` of a position is signed; ``available_cash`` is the cash on
        spot and the free margin ``max(0, equity - gross / max_leverage)`` on
        margin/swap.
        """
        equity = self.equity
        gross = self.gross_exposure
        positions = {
            symbol: snapshot(position, equity) for symbol, position in self._positions.items()
        }
        if self.market_type == "spot":
            available = self._cash
        else:
            available = max(0.0, equity - gross / self.max_leverage)
        return PortfolioView(
            strategy_id=self.strategy_id or None,
            ts=self._last_ts if ts is None else ts,
            cash=self._cash,
            positions=positions,
            gross_exposure=gross,
            net_exposure=self.net_exposure,
            total_value=equity,
            total_unrealized_pnl=self.unrealized_pnl,
            available_cash=available,
            realized_pnl=self._realized_pnl,
            fees_paid=self._fees_paid,
            initial_capital=self._initial_capital,
            funding_paid=self._funding_paid,
        )

    def equity_point(self, ts: int) -> EquityPoint:
        """Mark-to-market state at ``ts``, for the equity chart."""
        return EquityPoint(
            ts=ts,
            strategy_id=self.strategy_id,
            cash=self._cash,
            equity=self.equity,
            realized_pnl=self._realized_pnl,
            unrealized_pnl=self.unrealized_pnl,
            fees_paid=self._fees_paid,
            gross_exposure=self.gross_exposure,
            net_exposure=self.net_exposure,
        )

    # -- copies and resume -------------------------------------------------------------------

    def copy(self) -> Ledger:
        """An independent copy (cheap: position states are immutable, only the dict is copied)."""
        clone = Ledger(
            self._initial_capital,
            market_type=self.market_type,
            max_leverage=self.max_leverage,
            strategy_id=self.strategy_id,
            rules=self.rules,
        )
        clone._contract_sizes = self._contract_sizes  # the same lookups: share them
        clone._cash = self._cash
        clone._realized_pnl = self._realized_pnl
        clone._fees_paid = self._fees_paid
        clone._funding_paid = self._funding_paid
        clone._positions = dict(self._positions)
        clone._last_ts = self._last_ts
        return clone

    @classmethod
    def replay(
        cls,
        fills: Iterable[Fill],
        initial_capital: float,
        market_type: LedgerMarket = "spot",
        max_leverage: float = 1.0,
        strategy_id: str = "",
        rules: MarketRulesProvider | None = None,
        funding: Iterable[FundingPayment] = (),
    ) -> Ledger:
        """Rebuild a ledger from its stored fills and funding payments, without checks (resume).

        Both in stored order; a payment goes before the fills of its own cycle
        (``ts`` not after theirs), as a cycle settles funding before it trades.
        The same arithmetic in the same order gives exactly the state of the
        ledger that applied them live (marks aside: see the module docstring).
        """
        ledger = cls(
            initial_capital,
            market_type=market_type,
            max_leverage=max_leverage,
            strategy_id=strategy_id,
            rules=rules,
        )
        payments = list(funding)
        settled = 0
        for fill in fills:
            while settled < len(payments) and payments[settled].ts <= fill.ts:
                ledger.apply_funding(payments[settled])
                settled += 1
            ledger.apply(fill, enforce=False)
        for payment in payments[settled:]:
            ledger.apply_funding(payment)
        return ledger
