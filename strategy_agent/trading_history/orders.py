"""Orders sent to a real exchange, recorded as they happen (schema v5, table ``orders``).

One row per order, keyed by its client order id (derived from the
instruction id, so one instruction is one row). The gateway writes the row
``sent`` *before* the HTTP call and moves it at each status change, each write
its own transaction, so a crash at any point leaves a row that says what may
have happened:

- ``sent``: the request may or may not have reached the exchange;
- ``unknown``: it was sent and no answer came back (network error, lost
  response); ``acknowledged``: the exchange has it, not (fully) filled yet;
- final: ``filled``, ``partially_filled`` (the rest expired or was canceled),
  ``rejected`` (with the reason; ``dust`` marks a close below the exchange's
  minimum), ``canceled``.

Rows in ``sent``, ``unknown`` or ``acknowledged`` are looked up on the
exchange by client id on restart (never re-sent blindly). A final row never
changes again. Quantities are in the market's order unit (base currency on
spot, contracts on swaps); ``avg_price`` and ``fee_quote`` in the quote
currency; ``fee`` in ``fee_currency`` as the exchange reported it. No key or
secret is ever stored here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal, get_args

from strategy_agent.errors import StrategyAgentError
from strategy_agent.trading_history.connection import StoreConnection

OrderStatus = Literal[
    "sent", "acknowledged", "filled", "partially_filled", "rejected", "canceled", "unknown"
]
ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)
# Whose outcome the exchange still has to tell us (reconciled on restart).
PENDING_STATUSES: tuple[OrderStatus, ...] = ("sent", "unknown", "acknowledged")
FINAL_STATUSES: tuple[OrderStatus, ...] = ("filled", "partially_filled", "rejected", "canceled")


class OrderRecordError(StrategyAgentError):
    """An order row was written twice, is missing, or a final order was asked to change."""


@dataclass(frozen=True)
class OrderRecord:
    """One order as recorded; times in epoch ms UTC (see the module doc for units)."""

    client_order_id: str
    strategy_id: str
    compose_id: str
    instruction_id: str
    exchange_id: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    order_type: Literal["market", "limit"]
    status: OrderStatus
    created_ts: int
    updated_ts: int
    limit_price: float | None = None
    reduce_only: bool = False
    exchange_order_id: str | None = None
    filled_qty: float = 0.0
    avg_price: float | None = None
    fee: float | None = None
    fee_currency: str | None = None
    fee_quote: float | None = None
    dust: bool = False
    reason: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def moved(self, status: OrderStatus, now_ms: int, **changes: Any) -> OrderRecord:
        """A copy in ``status`` at ``now_ms`` with ``changes`` (column names) applied."""
        return dataclasses.replace(self, status=status, updated_ts=now_ms, **changes)


_COLUMNS = [f.name for f in dataclasses.fields(OrderRecord)]
_MUTABLE = [
    "status",
    "exchange_order_id",
    "filled_qty",
    "avg_price",
    "fee",
    "fee_currency",
    "fee_quote",
    "dust",
    "reason",
    "updated_ts",
]


def insert_order(store: StoreConnection, order: OrderRecord) -> None:
    """Record a new order (one transaction); ``OrderRecordError`` if its id or instruction exists."""
    _check_status(order.status)
    values = [_to_db(getattr(order, name)) for name in _COLUMNS]
    try:
        with store.write():
            store.db.execute(
                f"INSERT INTO orders ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
                values,
            )
    except sqlite3.IntegrityError as error:
        raise OrderRecordError(
            f"order {order.client_order_id} (instruction {order.instruction_id}) is already "
            f"recorded: look it up instead of sending it again"
        ) from error


def update_order(store: StoreConnection, order: OrderRecord) -> None:
    """Write the new state of a recorded order (one transaction).

    Refuses (``OrderRecordError``) an order that is not recorded and a status
    change of an order whose recorded status is final: what the exchange
    reported as done is never undone (its fee may still be filled in).
    """
    _check_status(order.status)
    with store.write():
        current = store.scalar(
            "SELECT status FROM orders WHERE client_order_id = ?", [order.client_order_id]
        )
        if current is None:
            raise OrderRecordError(
                f"order {order.client_order_id} is not recorded; insert it first"
            )
        if current in FINAL_STATUSES and order.status != current:
            raise OrderRecordError(
                f"order {order.client_order_id} is already {current}; a final order never "
                f"changes (asked: {order.status})"
            )
        store.db.execute(
            f"UPDATE orders SET {', '.join(f'{name} = ?' for name in _MUTABLE)} "
            f"WHERE client_order_id = ?",
            [_to_db(getattr(order, name)) for name in _MUTABLE] + [order.client_order_id],
        )


def get_order(store: StoreConnection, client_order_id: str) -> OrderRecord | None:
    """The recorded order with this client id, or ``None``."""
    rows = store.rows("SELECT * FROM orders WHERE client_order_id = ?", [client_order_id])
    return _record(rows[0]) if rows else None


def orders_of(
    store: StoreConnection, strategy_id: str, statuses: tuple[str, ...] | None = None
) -> list[OrderRecord]:
    """The strategy's orders (only those in ``statuses`` when given), oldest first."""
    sql = "SELECT * FROM orders WHERE strategy_id = ?"
    params: list[Any] = [strategy_id]
    if statuses:
        sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params += list(statuses)
    return [_record(row) for row in store.rows(sql + " ORDER BY created_ts, rowid", params)]


def unapplied_fills(store: StoreConnection, strategy_id: str) -> list[OrderRecord]:
    """Filled (or partly filled) final orders whose instruction has no row in ``fills`` yet.

    These are the fills the exchange made that the ledger has not applied (a
    crash after the exchange answered and before the cycle was written).
    """
    rows = store.rows(
        "SELECT o.* FROM orders o WHERE o.strategy_id = ? "
        "AND o.status IN ('filled', 'partially_filled') AND o.filled_qty > 0 "
        "AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.strategy_id = o.strategy_id "
        "AND f.instruction_id = o.instruction_id) ORDER BY o.created_ts, o.rowid",
        [strategy_id],
    )
    return [_record(row) for row in rows]


def has_orders_of(store: StoreConnection, strategy_id: str, compose_id: str) -> bool:
    """True when an order was recorded for the cycle ``compose_id`` (an interrupted attempt)."""
    found = store.scalar(
        "SELECT 1 FROM orders WHERE strategy_id = ? AND compose_id = ? LIMIT 1",
        [strategy_id, compose_id],
    )
    return found is not None


def fill_applied(store: StoreConnection, strategy_id: str, instruction_id: str) -> bool:
    """True when the ledger's ``fills`` table holds the fill of this instruction."""
    found = store.scalar(
        "SELECT 1 FROM fills WHERE strategy_id = ? AND instruction_id = ? LIMIT 1",
        [strategy_id, instruction_id],
    )
    return found is not None


def _check_status(status: str) -> None:
    if status not in ORDER_STATUSES:
        raise ValueError(f"unknown order status {status!r}; use one of {', '.join(ORDER_STATUSES)}")


def _to_db(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _record(row: dict[str, Any]) -> OrderRecord:
    values = {name: row[name] for name in _COLUMNS}
    values["reduce_only"] = bool(values["reduce_only"])
    values["dust"] = bool(values["dust"])
    return OrderRecord(**values)
