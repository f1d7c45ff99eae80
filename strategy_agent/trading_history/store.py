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
from collections.abc import Sequence
from typing import Any, get_args

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
from strategy_agent.trading_history.cycle_rows import (
    INSERTS,
    TRADE_INSERT,
    CycleWrite,
    equity_row,
    fill_row,
    record_row,
    trade_row,
)
from strategy_agent.trading_history.interfaces import HistoryRecorder
from strategy_agent.trading_history.reads import HistoryReads
from strategy_agent.trading_history.schema import SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEFAULT_DB_PATH",
    "SCHEMA_VERSION",
    "CycleWrite",
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

    def strategy_stamp(self, strategy_id: str) -> tuple[int, str] | None:
        """``(updated_ts, stored config JSON)`` of a strategy, unparsed (``None``: no such
        strategy): the cheap way to see that it did not change since the last read."""
        row = self.db.conn.execute(
            "SELECT updated_ts, config FROM strategies WHERE id = ?", [strategy_id]
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

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
        self.write_cycles(strategy_id, [CycleWrite(records, fills, trades, equity)])

    def write_cycles(self, strategy_id: str, cycles: Sequence[CycleWrite]) -> None:
        """Write several cycles of one strategy in ONE transaction: all of them or none.

        Each cycle as ``write_cycle`` writes it; the first must come right after
        the last stored cycle and each one right after the one before it, else
        ``DuplicateCycle`` and nothing of the batch is written. (A replay
        buffers its cycles and writes them this way: ``cycle_batch``.)
        """
        if not cycles:
            return
        numbered = [_cycle_of(cycle.records) for cycle in cycles]
        compose_id = numbered[0][0]
        rows: dict[str, list[list[Any]]] = {table: [] for table in INSERTS}
        try:
            with self.write():
                last = int(
                    self.scalar(
                        "SELECT COALESCE(MAX(cycle), 0) FROM cycles WHERE strategy_id = ?",
                        [strategy_id],
                    )
                )
                for (compose_id, number), write in zip(numbered, cycles, strict=True):
                    cycle = last + 1 if number is None else number
                    if cycle != last + 1:
                        raise DuplicateCycle(
                            f"cycle {cycle} of strategy {strategy_id} was not written: the last "
                            f"stored cycle is {last}, so another runner already ran it (or the "
                            f"cycles are out of order); nothing of it was recorded"
                        )
                    ok = all(record.kind != "error" for record in write.records)
                    ts = write.records[0].ts
                    rows["cycles"].append([strategy_id, cycle, compose_id, ts, int(ok)])
                    rows["history_records"] += [record_row(strategy_id, r) for r in write.records]
                    rows["fills"] += [fill_row(strategy_id, fill) for fill in write.fills]
                    if write.equity is not None:
                        rows["equity"].append(equity_row(strategy_id, cycle, write.equity))
                    last = cycle
                for table, sql in INSERTS.items():
                    if rows[table]:
                        self.db.conn.executemany(sql, rows[table])
                for write in cycles:  # closed trades are few (one per round trip)
                    for trade in write.trades:
                        self._insert_trade(strategy_id, trade)
        except sqlite3.IntegrityError as error:
            if "FOREIGN KEY" in str(error):
                raise ConfigurationError(
                    f"no strategy with id {strategy_id!r} in {self.path}: "
                    f"create_strategy before writing its history"
                ) from error
            if "UNIQUE" in str(error):
                what = f"cycle {compose_id}" if len(cycles) == 1 else f"{len(cycles)} cycles"
                raise DuplicateCycle(
                    f"{what} of strategy {strategy_id} was not written: the "
                    f"database already holds it ({error}); nothing of it was recorded twice"
                ) from error
            raise

    def _insert_trade(self, strategy_id: str, trade: TradeHistoryEntry) -> None:
        self.db.conn.execute(TRADE_INSERT, trade_row(strategy_id, trade))


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
