"""The rows one cycle writes, as the history store inserts them (``SqliteStore.write_cycles``).

Each builder checks that the row belongs to the strategy it is written for
(a row whose ``strategy_id`` is unset takes it) and returns the values in the
column order of its ``INSERTS`` statement.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pydantic_core

from strategy_agent.models import EquityPoint, Fill, HistoryRecord, TradeHistoryEntry
from strategy_agent.trading_history.reads import EQUITY_COLUMNS, FILL_COLUMNS


class CycleWrite(NamedTuple):
    """One cycle's rows, as ``write_cycle`` takes them (``write_cycles`` takes several)."""

    records: list[HistoryRecord]
    fills: list[Fill]
    trades: list[TradeHistoryEntry]
    equity: EquityPoint | None


# The tables of a batch, inserted in this order (each table's rows in cycle order).
INSERTS = {
    "cycles": "INSERT INTO cycles (strategy_id, cycle, compose_id, ts, ok) VALUES (?, ?, ?, ?, ?)",
    "history_records": "INSERT INTO history_records "
    "(ts, strategy_id, kind, reference_id, payload, cost_usd, tokens) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "fills": f"INSERT INTO fills ({FILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "equity": f"INSERT INTO equity ({EQUITY_COLUMNS}, cycle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
}


TRADE_INSERT = (
    "INSERT INTO trades (strategy_id, trade_id, symbol, type, side, quantity, entry_ts, "
    "exit_ts, entry_price, exit_price, realized_pnl, realized_pnl_pct, fees, holding_ms, "
    "compose_id, instruction_id, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def record_row(strategy_id: str, record: HistoryRecord) -> list[Any]:
    _same_strategy(strategy_id, record.strategy_id, "HistoryRecord")
    payload = pydantic_core.to_json(record.payload, inf_nan_mode="null").decode()
    cost = record.payload.get("cost_usd") if record.kind == "compose" else None
    if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost != cost:
        cost = None
    # prompt + completion tokens of a compose record (None when neither is known)
    counts = [record.payload.get(f"{part}_tokens") for part in ("prompt", "completion")]
    known = [n for n in counts if isinstance(n, int) and not isinstance(n, bool)]
    tokens = sum(known) if known and record.kind == "compose" else None
    return [record.ts, strategy_id, record.kind, record.reference_id, payload, cost, tokens]


def fill_row(strategy_id: str, fill: Fill) -> list[Any]:
    _same_strategy(strategy_id, fill.strategy_id or None, "Fill")
    return [
        fill.ts,
        strategy_id,
        fill.compose_id,
        fill.instruction_id,
        fill.symbol,
        fill.side,
        fill.quantity,
        fill.price,
        fill.fee,
        fill.realized_pnl,
    ]


def trade_row(strategy_id: str, trade: TradeHistoryEntry) -> list[Any]:
    _same_strategy(strategy_id, trade.strategy_id, "TradeHistoryEntry")
    stored = trade.model_copy(update={"strategy_id": strategy_id})
    return [
        strategy_id,
        trade.trade_id,
        trade.instrument.symbol,
        trade.type,
        trade.side,
        trade.quantity,
        trade.entry_ts,
        trade.exit_ts,
        trade.entry_price,
        trade.exit_price,
        trade.realized_pnl,
        trade.realized_pnl_pct,
        trade.fees,
        trade.holding_ms,
        trade.compose_id,
        trade.instruction_id,
        stored.model_dump_json(),
    ]


def equity_row(strategy_id: str, cycle: int, point: EquityPoint) -> list[Any]:
    _same_strategy(strategy_id, point.strategy_id, "EquityPoint")
    return [
        point.ts,
        strategy_id,
        point.cash,
        point.equity,
        point.realized_pnl,
        point.unrealized_pnl,
        point.fees_paid,
        point.gross_exposure,
        point.net_exposure,
        cycle,
    ]


def _same_strategy(strategy_id: str, own: str | None, what: str) -> None:
    if own is not None and own != strategy_id:
        raise ValueError(
            f"{what} belongs to strategy {own!r} but was written for {strategy_id!r}: "
            f"write each strategy's rows with its own id"
        )
