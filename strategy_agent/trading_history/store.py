"""SQLite history store: strategies, checkpoints, fills, closed trades and equity.

One ``SqliteStore`` per thread: its connection refuses other threads
(``check_same_thread=True``); a worker thread opens its own store on the same
path. WAL is on, so readers never wait for the writer, and every write
transaction starts with ``BEGIN IMMEDIATE`` so two writers queue on the busy
timeout instead of failing with "database is locked".

Everything but a strategy's status/config is append-only. Reads are bounded by
SQL (``LIMIT``, aggregates, window functions); only ``load_fills`` and
``load_trades`` read a strategy's rows whole, for resuming it.

Secrets never reach the database: ``UserRequest`` excludes its ``SecretStr``
fields from dumps, and ``create_strategy``/``update_request`` also refuse a
config whose JSON contains the value of any of them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import pydantic_core
import sqlite_utils
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import (
    EquityPoint,
    Fill,
    HistoryKind,
    HistoryRecord,
    StrategyStatus,
    StrategySummary,
    TradeHistoryEntry,
    UserRequest,
)
from strategy_agent.trading_history.interfaces import HistoryRecorder

DEFAULT_DB_PATH = Path("data/strategy_agent.db")
SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 30.0

_STATUSES: tuple[str, ...] = get_args(StrategyStatus)
_KINDS: tuple[str, ...] = get_args(HistoryKind)

# Migrations by target version: _MIGRATIONS[0] brings an empty file to version 1.
_MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE strategies (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            config TEXT NOT NULL,
            status TEXT NOT NULL,
            status_reason TEXT,
            created_ts INTEGER NOT NULL,
            updated_ts INTEGER NOT NULL
        )""",
        """CREATE TABLE history_records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts INTEGER NOT NULL,
            strategy_id TEXT NOT NULL REFERENCES strategies(id),
            kind TEXT NOT NULL,
            reference_id TEXT NOT NULL,
            payload TEXT NOT NULL
        )""",
        "CREATE INDEX idx_history_kind ON history_records (strategy_id, kind, id)",
        "CREATE INDEX idx_history_reference ON history_records (strategy_id, reference_id)",
        "CREATE INDEX idx_history_order ON history_records (strategy_id, id)",
        """CREATE TABLE fills (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts INTEGER NOT NULL,
            strategy_id TEXT NOT NULL REFERENCES strategies(id),
            compose_id TEXT NOT NULL,
            instruction_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity REAL NOT NULL,
            price REAL NOT NULL,
            fee REAL NOT NULL,
            realized_pnl REAL NOT NULL
        )""",
        "CREATE INDEX idx_fills_strategy ON fills (strategy_id, id)",
        """CREATE TABLE equity (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts INTEGER NOT NULL,
            strategy_id TEXT NOT NULL REFERENCES strategies(id),
            cash REAL NOT NULL,
            equity REAL NOT NULL,
            realized_pnl REAL NOT NULL,
            unrealized_pnl REAL NOT NULL,
            fees_paid REAL NOT NULL,
            gross_exposure REAL NOT NULL,
            net_exposure REAL NOT NULL
        )""",
        "CREATE INDEX idx_equity_strategy ON equity (strategy_id, ts)",
        """CREATE TABLE trades (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            strategy_id TEXT NOT NULL REFERENCES strategies(id),
            trade_id TEXT,
            symbol TEXT NOT NULL,
            type TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity REAL NOT NULL,
            entry_ts INTEGER,
            exit_ts INTEGER,
            entry_price REAL,
            exit_price REAL,
            realized_pnl REAL,
            realized_pnl_pct REAL,
            fees REAL NOT NULL,
            holding_ms INTEGER,
            compose_id TEXT,
            instruction_id TEXT,
            payload TEXT NOT NULL
        )""",
        "CREATE INDEX idx_trades_strategy ON trades (strategy_id, exit_ts)",
    ],
    # 2: LLM cost as a column, so the leaderboard sums it with an index, not JSON parsing
    [
        "ALTER TABLE history_records ADD COLUMN cost_usd REAL",
        "UPDATE history_records SET cost_usd = json_extract(payload, '$.cost_usd') "
        "WHERE kind = 'compose'",
        "CREATE INDEX idx_history_cost ON history_records (strategy_id, kind, cost_usd)",
    ],
]

_EQUITY_COLUMNS = (
    "ts, strategy_id, cash, equity, realized_pnl, unrealized_pnl, fees_paid, "
    "gross_exposure, net_exposure"
)
_FILL_COLUMNS = (
    "ts, strategy_id, compose_id, instruction_id, symbol, side, quantity, price, fee, realized_pnl"
)


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


class SqliteStore(HistoryRecorder):
    """The history store of every strategy in one SQLite file (one object per thread)."""

    def __init__(self, path: str | Path = DEFAULT_DB_PATH) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=True)
        self.db = sqlite_utils.Database(conn)
        try:
            if self.path != ":memory:":
                self.db.enable_wal()
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; fsync at checkpoints
            self._migrate()
        except BaseException:
            conn.close()
            raise

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (the store cannot be used afterwards)."""
        self.db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The file's schema version (``PRAGMA user_version``), raised by migrations."""
        return int(self._scalar("PRAGMA user_version"))

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, all or nothing; takes the write lock up front."""
        conn = self.db.conn
        if conn.in_transaction:
            raise RuntimeError("SqliteStore write transactions do not nest")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _migrate(self) -> None:
        with self._write():
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{self.path} has schema version {version}, newer than this program's "
                    f"{SCHEMA_VERSION}: upgrade strategy-agent or use another --db file"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target - 1]:
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {target}")

    # -- small query helpers --------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.db.execute(sql, params).fetchone()
        return None if row is None else row[0]

    # -- strategies -----------------------------------------------------------------------

    def create_strategy(
        self, request: UserRequest, now_ms: int, strategy_id: str | None = None
    ) -> str:
        """Store a new strategy with status ``created``; returns its id (short uuid4 hex)."""
        new_id = strategy_id or uuid.uuid4().hex[:12]
        config = _config_json(request)
        try:
            with self._write():
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
        rows = self._rows("SELECT * FROM strategies WHERE id = ?", [strategy_id])
        if not rows:
            raise ConfigurationError(
                f"no strategy with id {strategy_id!r} in {self.path}: "
                f"list the stored ones with `python -m strategy_agent report --db {self.path}`"
            )
        return _strategy_row(rows[0])

    def list_strategies(self) -> list[StrategyRow]:
        """Every stored strategy, oldest first."""
        rows = self._rows("SELECT * FROM strategies ORDER BY created_ts, id")
        return [_strategy_row(row) for row in rows]

    def set_status(
        self, strategy_id: str, status: StrategyStatus, reason: str | None, now_ms: int
    ) -> None:
        """Set the lifecycle status and its reason (``None`` clears the reason)."""
        if status not in _STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {', '.join(_STATUSES)}")
        with self._write():
            cursor = self.db.execute(
                "UPDATE strategies SET status = ?, status_reason = ?, updated_ts = ? WHERE id = ?",
                [status, reason, now_ms, strategy_id],
            )
            self._require_updated(cursor, strategy_id)

    def update_request(self, strategy_id: str, request: UserRequest, now_ms: int) -> None:
        """Replace the stored request (and the name taken from it)."""
        config = _config_json(request)
        with self._write():
            cursor = self.db.execute(
                "UPDATE strategies SET config = ?, name = ?, updated_ts = ? WHERE id = ?",
                [config, request.trading.strategy_name, now_ms, strategy_id],
            )
            self._require_updated(cursor, strategy_id)

    def delete_strategy(self, strategy_id: str) -> None:
        """Delete a strategy and every row of it, in one transaction."""
        with self._write():
            for table in ("history_records", "fills", "equity", "trades"):
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
        """Write a cycle's checkpoints, fills, closed trades and equity point atomically.

        Rows whose ``strategy_id`` is unset get ``strategy_id``; a different one
        is refused. Nothing is written if anything fails.
        """
        try:
            with self._write():
                for record in records:
                    self._insert_record(strategy_id, record)
                for fill in fills:
                    self._insert_fill(strategy_id, fill)
                for trade in trades:
                    self._insert_trade(strategy_id, trade)
                if equity is not None:
                    self._insert_equity(strategy_id, equity)
        except sqlite3.IntegrityError as error:
            if "FOREIGN KEY" not in str(error):
                raise
            raise ConfigurationError(
                f"no strategy with id {strategy_id!r} in {self.path}: "
                f"create_strategy before writing its history"
            ) from error

    def _insert_record(self, strategy_id: str, record: HistoryRecord) -> None:
        _same_strategy(strategy_id, record.strategy_id, "HistoryRecord")
        payload = pydantic_core.to_json(record.payload, inf_nan_mode="null").decode()
        cost = record.payload.get("cost_usd") if record.kind == "compose" else None
        if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost != cost:
            cost = None
        self.db.execute(
            "INSERT INTO history_records (ts, strategy_id, kind, reference_id, payload, cost_usd) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [record.ts, strategy_id, record.kind, record.reference_id, payload, cost],
        )

    def _insert_fill(self, strategy_id: str, fill: Fill) -> None:
        _same_strategy(strategy_id, fill.strategy_id or None, "Fill")
        self.db.execute(
            f"INSERT INTO fills ({_FILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    def _insert_equity(self, strategy_id: str, point: EquityPoint) -> None:
        _same_strategy(strategy_id, point.strategy_id, "EquityPoint")
        self.db.execute(
            f"INSERT INTO equity ({_EQUITY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ],
        )

    # -- reads for resuming -------------------------------------------------------------------

    def load_fills(self, strategy_id: str) -> list[Fill]:
        """Every fill of the strategy, in the order they were written (for the ledger replay)."""
        rows = self._rows(
            f"SELECT {_FILL_COLUMNS} FROM fills WHERE strategy_id = ? ORDER BY id", [strategy_id]
        )
        return [Fill(**row) for row in rows]

    def load_trades(self, strategy_id: str) -> list[TradeHistoryEntry]:
        """Every closed trade of the strategy, in the order they were written."""
        rows = self._rows(
            "SELECT payload FROM trades WHERE strategy_id = ? ORDER BY id", [strategy_id]
        )
        return [TradeHistoryEntry.model_validate_json(row["payload"]) for row in rows]

    def fill_totals(self, strategy_id: str) -> dict[str, float]:
        """Sums over the fills table (for reconciliation): realized P&L, fees, count."""
        rows = self._rows(
            "SELECT COUNT(*) AS fills, COALESCE(SUM(realized_pnl), 0.0) AS realized_pnl, "
            "COALESCE(SUM(fee), 0.0) AS fees FROM fills WHERE strategy_id = ?",
            [strategy_id],
        )
        return {key: float(value) for key, value in rows[0].items()}

    def llm_cost(self, strategy_id: str) -> float | None:
        """Total LLM cost in USD of the strategy's cycles; None when no cost is known."""
        value = self._scalar(
            "SELECT SUM(cost_usd) FROM history_records WHERE strategy_id = ? AND kind = 'compose'",
            [strategy_id],
        )
        return None if value is None else float(value)

    def cycle_count(self, strategy_id: str) -> int:
        """Number of cycles recorded (distinct ``reference_id`` over the checkpoints)."""
        return int(
            self._scalar(
                "SELECT COUNT(DISTINCT reference_id) FROM history_records WHERE strategy_id = ?",
                [strategy_id],
            )
        )

    def last_cycle_ts(self, strategy_id: str) -> int | None:
        """``ts`` of the last checkpoint written (cycles are written in time order)."""
        value = self._scalar(
            "SELECT ts FROM history_records WHERE strategy_id = ? ORDER BY id DESC LIMIT 1",
            [strategy_id],
        )
        return None if value is None else int(value)

    # -- equity ---------------------------------------------------------------------------------

    def latest_equity(self, strategy_id: str) -> EquityPoint | None:
        """The most recent equity point, or ``None`` before the first cycle."""
        rows = self._rows(
            f"SELECT {_EQUITY_COLUMNS} FROM equity WHERE strategy_id = ? "
            "ORDER BY ts DESC, id DESC LIMIT 1",
            [strategy_id],
        )
        return EquityPoint(**rows[0]) if rows else None

    def equity_series(self, strategy_id: str, max_points: int = 2000) -> list[EquityPoint]:
        """Equity points oldest first, at most ``max_points`` (evenly thinned in SQL).

        When thinned, every ``step``-th point is kept plus always the first and
        the last, with ``step = ceil((n - 1) / (max_points - 1))``.
        """
        if max_points < 2:
            raise ValueError("max_points must be at least 2 (the first and the last point)")
        total = int(
            self._scalar("SELECT COUNT(*) FROM equity WHERE strategy_id = ?", [strategy_id])
        )
        step = max(1, -(-(total - 1) // (max_points - 1)))
        rows = self._rows(
            f"""WITH numbered AS (
                SELECT {_EQUITY_COLUMNS}, ROW_NUMBER() OVER (ORDER BY ts, id) AS rn
                FROM equity WHERE strategy_id = :sid
            )
            SELECT {_EQUITY_COLUMNS} FROM numbered
            WHERE (rn - 1) % :step = 0 OR rn = :total
            ORDER BY rn""",
            {"sid": strategy_id, "step": step, "total": total},
        )
        return [EquityPoint(**row) for row in rows]

    # -- checkpoints ------------------------------------------------------------------------------

    def records(
        self,
        strategy_id: str,
        kind: HistoryKind | None = None,
        reference_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[HistoryRecord]:
        """Checkpoints of a strategy, newest first, optionally of one kind or cycle."""
        _check_page(limit, offset)
        where, params = _record_filter(strategy_id, kind, reference_id)
        rows = self._rows(
            f"SELECT ts, strategy_id, kind, reference_id, payload FROM history_records "
            f"WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [
            HistoryRecord(
                ts=row["ts"],
                kind=row["kind"],
                reference_id=row["reference_id"],
                payload=json.loads(row["payload"]),
                strategy_id=row["strategy_id"],
            )
            for row in rows
        ]

    def count_records(self, strategy_id: str, kind: HistoryKind | None = None) -> int:
        """Number of checkpoints of a strategy, optionally of one kind."""
        where, params = _record_filter(strategy_id, kind, None)
        return int(self._scalar(f"SELECT COUNT(*) FROM history_records WHERE {where}", params))

    def cycles_page(
        self,
        strategy_id: str,
        limit: int = 50,
        offset: int = 0,
        symbol: str | None = None,
        action: str | None = None,
        had_rejections: bool | None = None,
    ) -> list[dict[str, Any]]:
        """One row per cycle (its ``compose`` checkpoint), newest first.

        Keys: ``ts, compose_id, cycle, notes, actions`` (the guardrail outcomes:
        ``symbol, action, status, reasons``...), ``n_rejected, prompt_tokens,
        completion_tokens, tokens, cost_usd, latency_ms, fallback_used``.
        ``symbol`` and ``action`` keep cycles with one outcome matching both;
        ``had_rejections`` keeps cycles with (True) or without (False) a rejection.
        """
        _check_page(limit, offset)
        where, params = _cycle_filter(strategy_id, symbol, action, had_rejections)
        rows = self._rows(
            f"""SELECT h.ts, h.reference_id AS compose_id,
                json_extract(h.payload, '$.cycle') AS cycle,
                json_extract(h.payload, '$.notes') AS notes,
                json_extract(h.payload, '$.outcomes') AS outcomes,
                {_N_REJECTED} AS n_rejected,
                json_extract(h.payload, '$.prompt_tokens') AS prompt_tokens,
                json_extract(h.payload, '$.completion_tokens') AS completion_tokens,
                json_extract(h.payload, '$.cost_usd') AS cost_usd,
                json_extract(h.payload, '$.latency_ms') AS latency_ms,
                json_extract(h.payload, '$.fallback_used') AS fallback_used
            FROM history_records h WHERE {where}
            ORDER BY h.id DESC LIMIT :limit OFFSET :offset""",
            {**params, "limit": limit, "offset": offset},
        )
        return [_cycle_row(row) for row in rows]

    def count_cycles(
        self,
        strategy_id: str,
        symbol: str | None = None,
        action: str | None = None,
        had_rejections: bool | None = None,
    ) -> int:
        """Number of rows ``cycles_page`` can page through with the same filters."""
        where, params = _cycle_filter(strategy_id, symbol, action, had_rejections)
        cursor = self.db.execute(f"SELECT COUNT(*) FROM history_records h WHERE {where}", params)
        return int(cursor.fetchone()[0])

    # -- leaderboard ------------------------------------------------------------------------------

    def summaries(self) -> list[StrategySummary]:
        """One summary per strategy, oldest first, computed with SQL aggregates.

        Before the first equity point a strategy shows its initial capital and
        zero P&L. ``win_rate`` counts a trade as won when ``realized_pnl - fees
        > 0``. ``max_drawdown_pct`` is the largest fall from a running peak of
        equity (the initial capital counts as the first peak), in percent.
        ``pnl_pct`` is in percent of the initial capital. ``last_updated_ts`` is
        the ``ts`` of the latest equity point (the strategy's own clock, which
        is market time for a stepped simulation), else the row's ``updated_ts``.
        """
        return [_summary(row) for row in self._rows(_SUMMARY_SQL)]


# -- module helpers ----------------------------------------------------------------------------

_N_REJECTED = (
    "(SELECT COUNT(*) FROM json_each(h.payload, '$.outcomes') o "
    "WHERE json_extract(o.value, '$.status') = 'rejected')"
)

_SUMMARY_SQL = """
WITH latest AS (
    SELECT s.id AS strategy_id, e.ts, e.equity, e.realized_pnl, e.unrealized_pnl, e.fees_paid
    FROM strategies s
    JOIN equity e ON e.id = (
        SELECT id FROM equity WHERE strategy_id = s.id ORDER BY ts DESC, id DESC LIMIT 1
    )
),
trade_counts AS (
    SELECT strategy_id, COUNT(*) AS trade_count,
        SUM(CASE WHEN COALESCE(realized_pnl, 0) - fees > 0 THEN 1 ELSE 0 END) AS wins
    FROM trades GROUP BY strategy_id
),
cycles AS (
    SELECT strategy_id, COUNT(DISTINCT reference_id) AS cycles
    FROM history_records GROUP BY strategy_id
),
capitals AS MATERIALIZED (
    SELECT id AS strategy_id, json_extract(config, '$.trading.initial_capital') AS capital
    FROM strategies
),
running_peaks AS (
    SELECT strategy_id, equity, MAX(equity) OVER (
        PARTITION BY strategy_id ORDER BY ts, id ROWS UNBOUNDED PRECEDING
    ) AS running_peak
    FROM equity
),
peaks AS (
    SELECT r.strategy_id, r.equity, MAX(r.running_peak, COALESCE(c.capital, 0)) AS peak
    FROM running_peaks r JOIN capitals c ON c.strategy_id = r.strategy_id
),
drawdowns AS (
    SELECT strategy_id, MAX(CASE WHEN peak > 0 THEN (peak - equity) / peak * 100.0 ELSE 0 END)
        AS max_drawdown_pct
    FROM peaks GROUP BY strategy_id
)
SELECT s.id, s.name, s.status, s.status_reason, s.updated_ts,
    json_extract(s.config, '$.llm.provider') AS model_provider,
    json_extract(s.config, '$.llm.model_id') AS model_id,
    json_extract(s.config, '$.exchange.exchange_id') AS exchange_id,
    json_extract(s.config, '$.exchange.trading_mode') AS mode,
    json_extract(s.config, '$.trading.initial_capital') AS initial_capital,
    l.ts AS equity_ts, l.equity, l.realized_pnl, l.unrealized_pnl, l.fees_paid,
    COALESCE(t.trade_count, 0) AS trade_count, COALESCE(t.wins, 0) AS wins,
    COALESCE(c.cycles, 0) AS cycles, COALESCE(d.max_drawdown_pct, 0.0) AS max_drawdown_pct
FROM strategies s
LEFT JOIN latest l ON l.strategy_id = s.id
LEFT JOIN trade_counts t ON t.strategy_id = s.id
LEFT JOIN cycles c ON c.strategy_id = s.id
LEFT JOIN drawdowns d ON d.strategy_id = s.id
ORDER BY s.created_ts, s.id
"""


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


def _same_strategy(strategy_id: str, own: str | None, what: str) -> None:
    if own is not None and own != strategy_id:
        raise ValueError(
            f"{what} belongs to strategy {own!r} but was written for {strategy_id!r}: "
            f"write each strategy's rows with its own id"
        )


def _check_page(limit: int, offset: int) -> None:
    # SQLite reads a negative LIMIT as "no limit": refuse it instead.
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be >= 0 (got limit={limit}, offset={offset})")


def _record_filter(
    strategy_id: str, kind: str | None, reference_id: str | None
) -> tuple[str, list[Any]]:
    clauses, params = ["strategy_id = ?"], [strategy_id]
    if kind is not None:
        if kind not in _KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(_KINDS)}")
        clauses.append("kind = ?")
        params.append(kind)
    if reference_id is not None:
        clauses.append("reference_id = ?")
        params.append(reference_id)
    return " AND ".join(clauses), params


def _cycle_filter(
    strategy_id: str, symbol: str | None, action: str | None, had_rejections: bool | None
) -> tuple[str, dict[str, Any]]:
    clauses = ["h.strategy_id = :sid", "h.kind = 'compose'"]
    params: dict[str, Any] = {"sid": strategy_id}
    outcome_tests = []
    if symbol is not None:
        outcome_tests.append("json_extract(o.value, '$.symbol') = :symbol")
        params["symbol"] = symbol
    if action is not None:
        outcome_tests.append("json_extract(o.value, '$.action') = :action")
        params["action"] = action
    if outcome_tests:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(h.payload, '$.outcomes') o WHERE "
            + " AND ".join(outcome_tests)
            + ")"
        )
    if had_rejections is not None:
        clauses.append(f"{_N_REJECTED} {'>' if had_rejections else '='} 0")
    return " AND ".join(clauses), params


def _cycle_row(row: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = row["prompt_tokens"], row["completion_tokens"]
    fallback = row["fallback_used"]
    return {
        "ts": row["ts"],
        "compose_id": row["compose_id"],
        "cycle": row["cycle"],
        "notes": row["notes"],
        "actions": json.loads(row["outcomes"]) if row["outcomes"] else [],
        "n_rejected": row["n_rejected"],
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": None
        if prompt is None and completion is None
        else (prompt or 0) + (completion or 0),
        "cost_usd": row["cost_usd"],
        "latency_ms": row["latency_ms"],
        "fallback_used": None if fallback is None else bool(fallback),
    }


def _summary(row: dict[str, Any]) -> StrategySummary:
    capital = row["initial_capital"]
    started = row["equity"] is not None
    equity = row["equity"] if started else capital
    pnl_abs = equity - capital if equity is not None and capital is not None else None
    trade_count = row["trade_count"]
    return StrategySummary(
        strategy_id=row["id"],
        name=row["name"],
        model_provider=row["model_provider"],
        model_id=row["model_id"],
        exchange_id=row["exchange_id"],
        mode=row["mode"],
        status=row["status"],
        status_reason=row["status_reason"],
        initial_capital=capital,
        equity=equity,
        realized_pnl=row["realized_pnl"] if started else 0.0,
        unrealized_pnl=row["unrealized_pnl"] if started else 0.0,
        fees_paid=row["fees_paid"] if started else 0.0,
        pnl_abs=pnl_abs,
        pnl_pct=pnl_abs / capital * 100.0 if pnl_abs is not None and capital else None,
        trade_count=trade_count,
        win_rate=row["wins"] / trade_count if trade_count else None,
        max_drawdown_pct=row["max_drawdown_pct"],
        cycles=row["cycles"],
        last_updated_ts=row["equity_ts"] if started else row["updated_ts"],
    )
