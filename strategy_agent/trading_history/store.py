"""SQLite history store: strategies, cycles, checkpoints, fills, closed trades and equity.

``SqliteStore`` is the one owner of the strategy database: its connection and
migrations (``connection.py``, ``schema.py``), its reads (``reads.py``) and
here the strategies and the writes of a cycle. Leases and prompt versions have
modules of their own in this package. One ``SqliteStore`` per thread.

Everything but a strategy's status/config is append-only, and the database
itself refuses a duplicate: one row per cycle number (written in order, each
after the last), one history record per cycle and kind, one fill per
instruction, one equity point per cycle.

Secrets never reach the database: ``UserRequest`` excludes its ``SecretStr``
fields from dumps, and ``create_strategy``/``update_request`` also refuse a
config whose JSON contains the value of any of them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any, get_args

import pydantic_core
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from strategy_agent.errors import ConfigurationError, StrategyAgentError
from strategy_agent.models import (
    EquityPoint,
    Fill,
    HistoryRecord,
    StrategyStatus,
    TradeHistoryEntry,
    UserRequest,
)
from strategy_agent.trading_history.connection import BUSY_TIMEOUT_S, DEFAULT_DB_PATH
from strategy_agent.trading_history.interfaces import HistoryRecorder
from strategy_agent.trading_history.reads import EQUITY_COLUMNS, FILL_COLUMNS, HistoryReads
from strategy_agent.trading_history.schema import SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEFAULT_DB_PATH",
    "SCHEMA_VERSION",
    "DuplicateCycle",
    "SqliteStore",
    "StrategyRow",
]

_STATUSES: tuple[str, ...] = get_args(StrategyStatus)
# Tables with a strategy_id column, children before parents (for delete_strategy).
_STRATEGY_TABLES = (
    "history_records",
    "fills",
    "equity",
    "trades",
    "cycles",
    "prompt_versions",
    "leases",
    "orders",
)


class DuplicateCycle(StrategyAgentError):
    """A cycle was written twice or out of order (a second runner got past the lease)."""


class StrategyRow(BaseModel):
    """One stored strategy: its request (secrets excluded) and lifecycle status."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    request: UserRequest
    status: StrategyStatus
    status_reason: str | None = None
    created_ts: int
    updated_ts: int


class SqliteStore(HistoryReads, HistoryRecorder):
    """The history store of every strategy in one SQLite file (one object per thread)."""

    # -- strategies -----------------------------------------------------------------------

    def create_strategy(
        self, request: UserRequest, now_ms: int, strategy_id: str | None = None
    ) -> str:
        """Store a new strategy with status ``created``; returns its id (short uuid4 hex)."""
        new_id = strategy_id or uuid.uuid4().hex[:12]
        config = _config_json(request)
        try:
            with self.write():
                self.db.execute(
                    "INSERT INTO strategies (id, name, config, status, status_reason, "
                    "created_ts, updated_ts) VALUES (?, ?, ?, 'created', NULL, ?, ?)",
                    [new_id, request.trading.strategy_name, config, now_ms, now_ms],
                )
        except sqlite3.IntegrityError as error:
            raise ConfigurationError(
                f"a strategy with id {new_id!r} already exists: choose another id or omit it"
            ) from error
        return new_id

    def get_strategy(self, strategy_id: str) -> StrategyRow:
        """The stored strategy; ``ConfigurationError`` when there is none with that id."""
        rows = self.rows("SELECT * FROM strategies WHERE id = ?", [strategy_id])
        if not rows:
            raise ConfigurationError(
                f"no strategy with id {strategy_id!r} in {self.path}: "
                f"list the stored ones with `python -m strategy_agent report --db {self.path}`"
            )
        return _strategy_row(rows[0])

    def list_strategies(self) -> list[StrategyRow]:
        """Every stored strategy, oldest first."""
        rows = self.rows("SELECT * FROM strategies ORDER BY created_ts, id")
        return [_strategy_row(row) for row in rows]

    def set_status(
        self, strategy_id: str, status: StrategyStatus, reason: str | None, now_ms: int
    ) -> None:
        """Set the lifecycle status and its reason (``None`` clears the reason)."""
        if status not in _STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {', '.join(_STATUSES)}")
        with self.write():
            cursor = self.db.execute(
                "UPDATE strategies SET status = ?, status_reason = ?, updated_ts = ? WHERE id = ?",
                [status, reason, now_ms, strategy_id],
            )
            self._require_updated(cursor, strategy_id)

    def update_request(self, strategy_id: str, request: UserRequest, now_ms: int) -> None:
        """Replace the stored request (and the name taken from it)."""
        config = _config_json(request)
        with self.write():
            cursor = self.db.execute(
                "UPDATE strategies SET config = ?, name = ?, updated_ts = ? WHERE id = ?",
                [config, request.trading.strategy_name, now_ms, strategy_id],
            )
            self._require_updated(cursor, strategy_id)

    def delete_strategy(self, strategy_id: str) -> None:
        """Delete a strategy and every row of it, in one transaction."""
        with self.write():
            for table in _STRATEGY_TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE strategy_id = ?", [strategy_id])
            cursor = self.db.execute("DELETE FROM strategies WHERE id = ?", [strategy_id])
            self._require_updated(cursor, strategy_id)

    def _require_updated(self, cursor: sqlite3.Cursor, strategy_id: str) -> None:
        if cursor.rowcount == 0:
            raise ConfigurationError(
                f"no strategy with id {strategy_id!r} in {self.path}: create it first "
                f"or check the id"
            )

    # -- writes of a cycle ------------------------------------------------------------------

    def record(self, record: HistoryRecord) -> None:
        """Append one checkpoint; ``record.strategy_id`` must be set."""
        if record.strategy_id is None:
            raise ValueError(
                "HistoryRecord.strategy_id is required by SqliteStore.record; "
                "or use write_cycle(strategy_id, ...)"
            )
        self.write_cycle(record.strategy_id, [record], [], [], None)

    def write_cycle(
        self,
        strategy_id: str,
        records: list[HistoryRecord],
        fills: list[Fill],
        trades: list[TradeHistoryEntry],
        equity: EquityPoint | None,
    ) -> None:
        """Write one cycle's checkpoints, fills, closed trades and equity point atomically.

        The cycle is the records' ``reference_id`` (its compose id; at least one
        record, all with the same id); its number is the ``cycle`` in their
        payloads, else the next one. It must come right after the last stored
        cycle and must not exist yet, else ``DuplicateCycle`` and nothing is
        written. The cycle counts as failed when it holds an ``error`` record.
        Rows whose ``strategy_id`` is unset get ``strategy_id``; a different one
        is refused. Nothing is written if anything fails.
        """
        compose_id, number = _cycle_of(records)
        try:
            with self.write():
                last = int(
                    self.scalar(
                        "SELECT COALESCE(MAX(cycle), 0) FROM cycles WHERE strategy_id = ?",
                        [strategy_id],
                    )
                )
                cycle = last + 1 if number is None else number
                if cycle != last + 1:
                    raise DuplicateCycle(
                        f"cycle {cycle} of strategy {strategy_id} was not written: the last "
                        f"stored cycle is {last}, so another runner already ran it (or the "
                        f"cycles are out of order); nothing of it was recorded"
                    )
                ok = all(record.kind != "error" for record in records)
                self.db.execute(
                    "INSERT INTO cycles (strategy_id, cycle, compose_id, ts, ok) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [strategy_id, cycle, compose_id, records[0].ts, int(ok)],
                )
                for record in records:
                    self._insert_record(strategy_id, record)
                for fill in fills:
                    self._insert_fill(strategy_id, fill)
                for trade in trades:
                    self._insert_trade(strategy_id, trade)
                if equity is not None:
                    self._insert_equity(strategy_id, cycle, equity)
        except sqlite3.IntegrityError as error:
            if "FOREIGN KEY" in str(error):
                raise ConfigurationError(
                    f"no strategy with id {strategy_id!r} in {self.path}: "
                    f"create_strategy before writing its history"
                ) from error
            if "UNIQUE" in str(error):
                raise DuplicateCycle(
                    f"cycle {compose_id} of strategy {strategy_id} was not written: the "
                    f"database already holds it ({error}); nothing of it was recorded twice"
                ) from error
            raise

    def _insert_record(self, strategy_id: str, record: HistoryRecord) -> None:
        _same_strategy(strategy_id, record.strategy_id, "HistoryRecord")
        payload = pydantic_core.to_json(record.payload, inf_nan_mode="null").decode()
        cost = record.payload.get("cost_usd") if record.kind == "compose" else None
        if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost != cost:
            cost = None
        # prompt + completion tokens of a compose record (None when neither is known)
        counts = [record.payload.get(f"{part}_tokens") for part in ("prompt", "completion")]
        known = [n for n in counts if isinstance(n, int) and not isinstance(n, bool)]
        tokens = sum(known) if known and record.kind == "compose" else None
        self.db.execute(
            "INSERT INTO history_records "
            "(ts, strategy_id, kind, reference_id, payload, cost_usd, tokens) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [record.ts, strategy_id, record.kind, record.reference_id, payload, cost, tokens],
        )

    def _insert_fill(self, strategy_id: str, fill: Fill) -> None:
        _same_strategy(strategy_id, fill.strategy_id or None, "Fill")
        self.db.execute(
            f"INSERT INTO fills ({FILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
            ],
        )

    def _insert_trade(self, strategy_id: str, trade: TradeHistoryEntry) -> None:
        _same_strategy(strategy_id, trade.strategy_id, "TradeHistoryEntry")
        stored = trade.model_copy(update={"strategy_id": strategy_id})
        self.db.execute(
            "INSERT INTO trades (strategy_id, trade_id, symbol, type, side, quantity, entry_ts, "
            "exit_ts, entry_price, exit_price, realized_pnl, realized_pnl_pct, fees, holding_ms, "
            "compose_id, instruction_id, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
            ],
        )

    def _insert_equity(self, strategy_id: str, cycle: int, point: EquityPoint) -> None:
        _same_strategy(strategy_id, point.strategy_id, "EquityPoint")
        self.db.execute(
            f"INSERT INTO equity ({EQUITY_COLUMNS}, cycle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
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
            ],
        )


# -- module helpers ----------------------------------------------------------------------------


def _secret_values(model: BaseModel) -> list[str]:
    """Non-empty values of every ``SecretStr`` field, nested models included."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if secret:
                found.append(secret)
        elif isinstance(value, BaseModel):
            found.extend(_secret_values(value))
    return found


def _config_json(request: UserRequest) -> str:
    """The request as stored: JSON without secrets (refused if one slipped in)."""
    config = json.dumps(request.model_dump(mode="json"), sort_keys=True)
    for secret in _secret_values(request):
        if secret in config or json.dumps(secret)[1:-1] in config:
            raise ConfigurationError(
                "refusing to store the strategy: its configuration contains the value of an "
                "API key or secret (e.g. pasted into the prompt or name); remove it and give "
                "keys through api_key_env or the session only"
            )
    return config


def _strategy_row(row: dict[str, Any]) -> StrategyRow:
    try:
        request = UserRequest.model_validate_json(row["config"])
    except ValidationError as error:
        raise ConfigurationError(
            f"stored configuration of strategy {row['id']!r} is no longer valid ({error}); "
            f"delete the strategy or fix its config"
        ) from error
    return StrategyRow(
        id=row["id"],
        name=row["name"],
        request=request,
        status=row["status"],
        status_reason=row["status_reason"],
        created_ts=row["created_ts"],
        updated_ts=row["updated_ts"],
    )


def _cycle_of(records: list[HistoryRecord]) -> tuple[str, int | None]:
    """``(compose_id, cycle number or None)`` of one cycle's records; ``ValueError`` if mixed."""
    if not records:
        raise ValueError("write_cycle needs at least one history record naming the cycle")
    ids = {record.reference_id for record in records}
    if len(ids) != 1:
        raise ValueError(f"one cycle per write_cycle: the records name {sorted(ids)}")
    numbers = {
        record.payload["cycle"]
        for record in records
        if isinstance(record.payload.get("cycle"), int)
        and not isinstance(record.payload.get("cycle"), bool)
    }
    if len(numbers) > 1:
        raise ValueError(f"the records of one cycle carry different numbers {sorted(numbers)}")
    return ids.pop(), numbers.pop() if numbers else None


def _same_strategy(strategy_id: str, own: str | None, what: str) -> None:
    if own is not None and own != strategy_id:
        raise ValueError(
            f"{what} belongs to strategy {own!r} but was written for {strategy_id!r}: "
            f"write each strategy's rows with its own id"
        )
