"""One position of the ledger and what it turns into: a snapshot for views, a closed trade.

Quantities are in contracts (the market's order unit; base units on spot).
Money is in the quote currency: a position of ``quantity`` contracts at
``price`` is worth ``notional(quantity, price, contract_size)`` =
``quantity x contract_size x price``, and moving the price by ``d`` changes
its P&L by ``quantity x contract_size x d``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from strategy_agent.data.market_rules import notional
from strategy_agent.models import Fill, InstrumentRef, PositionSnapshot, TradeHistoryEntry
from strategy_agent.trading_history.metrics import trade_net_pnl, trade_net_pnl_pct


@dataclass(frozen=True, slots=True)
class PositionState:
    """One open position and the round trip it belongs to (immutable; replaced on change).

    ``realized_pnl`` (before fees) and ``fees`` are of the open trade so far;
    ``peak_quantity`` is the largest absolute quantity held in it.
    ``opened_*``/``closed_*`` sum the quantities and ``quantity x price`` of the
    opening and closing fills, for the trade's average entry and exit prices.
    ``contract_size`` is in base units per contract (1 on spot).
    """

    symbol: str
    quantity: float
    avg_price: float
    mark_price: float
    entry_ts: int
    realized_pnl: float = 0.0
    fees: float = 0.0
    peak_quantity: float = 0.0
    opened_qty: float = 0.0
    opened_notional: float = 0.0
    closed_qty: float = 0.0
    closed_notional: float = 0.0
    contract_size: float = 1.0

    @property
    def trade_type(self) -> Literal["long", "short"]:
        return "long" if self.quantity > 0 else "short"

    @property
    def notional(self) -> float:
        """Signed market value ``quantity x contract_size x mark_price`` (quote currency)."""
        return notional(self.quantity, self.mark_price, self.contract_size)

    @property
    def unrealized_pnl(self) -> float:
        """``(mark_price - avg_price) x quantity x contract_size`` (quote currency)."""
        return self.pnl_at(self.mark_price, self.quantity)

    @property
    def entry_price(self) -> float:
        """Weighted average price of every opening fill of the trade."""
        return self.opened_notional / self.opened_qty if self.opened_qty > 0 else self.avg_price

    def marked(self, price: float) -> PositionState:
        """This position at mark ``price`` (``dataclasses.replace(self, mark_price=price)``
        without its per-call scan of the fields: a replay marks every cycle)."""
        return PositionState(
            self.symbol,
            self.quantity,
            self.avg_price,
            price,
            self.entry_ts,
            self.realized_pnl,
            self.fees,
            self.peak_quantity,
            self.opened_qty,
            self.opened_notional,
            self.closed_qty,
            self.closed_notional,
            self.contract_size,
        )

    def pnl_at(self, price: float, quantity: float) -> float:
        """P&L of ``quantity`` (signed as held) valued at ``price`` against ``avg_price``."""
        return (price - self.avg_price) * quantity * self.contract_size


def opened_position(
    position: PositionState | None, fill: Fill, signed: float, contract_size: float
) -> PositionState:
    """Open a position from flat, or add ``signed`` to it in its own direction."""
    if position is None:
        size = abs(signed)
        return PositionState(
            symbol=fill.symbol,
            quantity=signed,
            avg_price=fill.price,
            mark_price=fill.price,
            entry_ts=fill.ts,
            fees=fill.fee,
            peak_quantity=size,
            opened_qty=size,
            opened_notional=size * fill.price,
            contract_size=contract_size,
        )
    new_qty = position.quantity + signed
    held = abs(position.quantity)
    added = abs(signed)
    avg_price = (held * position.avg_price + added * fill.price) / (held + added)
    return replace(
        position,
        quantity=new_qty,
        avg_price=avg_price,
        mark_price=fill.price,
        fees=position.fees + fill.fee,
        peak_quantity=max(position.peak_quantity, abs(new_qty)),
        opened_qty=position.opened_qty + added,
        opened_notional=position.opened_notional + added * fill.price,
    )


def round_trip(
    position: PositionState, closing: Fill, strategy_id: str, *, long: bool
) -> TradeHistoryEntry:
    """The closed trade of ``position`` (already updated with the closing fill).

    ``realized_pnl`` is before fees, ``fees`` are every entry and exit fee of the
    trade, and ``realized_pnl_pct`` is the net P&L (``trade_net_pnl``) in percent
    of the entry notional (``closed_qty x contract_size x entry_price``).
    """
    entry_price = position.entry_price
    trade = TradeHistoryEntry(
        trade_id=f"{strategy_id}:{position.symbol}:{position.entry_ts}",
        compose_id=closing.compose_id or None,
        instruction_id=closing.instruction_id or None,
        strategy_id=strategy_id or None,
        trade_ts=closing.ts,
        entry_ts=position.entry_ts,
        exit_ts=closing.ts,
        instrument=InstrumentRef(symbol=position.symbol),
        side="buy" if long else "sell",
        type="long" if long else "short",
        quantity=position.peak_quantity,
        entry_price=entry_price,
        exit_price=position.closed_notional / position.closed_qty,
        realized_pnl=position.realized_pnl,
        fees=position.fees,
        holding_ms=max(0, closing.ts - position.entry_ts),
    )
    basis = notional(position.closed_qty, entry_price, position.contract_size)
    return trade.model_copy(
        update={"realized_pnl_pct": trade_net_pnl_pct(trade_net_pnl(trade), basis)}
    )


def snapshot(position: PositionState, equity: float) -> PositionSnapshot:
    """The position as views and the composer see it; ``pnl_pct`` on its cost basis."""
    basis = notional(abs(position.quantity), position.avg_price, position.contract_size)
    return PositionSnapshot(
        instrument=InstrumentRef(symbol=position.symbol),
        quantity=position.quantity,
        avg_price=position.avg_price,
        mark_price=position.mark_price,
        unrealized_pnl=position.unrealized_pnl,
        notional=position.notional,
        leverage=abs(position.notional) / equity if equity > 0 else None,
        entry_ts=position.entry_ts,
        pnl_pct=position.unrealized_pnl / basis * 100.0 if basis > 0 else None,
        trade_type=position.trade_type,
    )
