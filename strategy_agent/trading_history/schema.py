"""The database schema and its migrations: every table of the strategy database is created here.

``migrate(db, path)`` brings a file to ``SCHEMA_VERSION`` inside one
transaction (the caller holds it). A step is a list of SQL statements or a
function of the database, so a step can inspect what an older program left
(for example the prompt and cache tables that versions before 3 created on
their own).

Version 3 makes duplicates impossible at the database level: one row per
cycle (``cycles``), one history record per ``(strategy, cycle, kind)``, one
fill per instruction, one equity point per cycle; plus the ``leases`` table,
per-strategy prompt versions and the LLM response cache. A database that
already holds duplicates (written by the double-cycle bug of earlier versions)
is refused with the way to repair it, and nothing is changed.

Version 4 adds the candle store (``candle_store.py``): ``candles``, one row
per exchange, symbol, interval and open time, and ``candle_gaps``, the open-time
ranges an exchange was asked for and returned no candle for.

Version 5 adds ``orders`` (``orders.py``): one row per order sent to a real
exchange, keyed by its client order id, written at each status change, so a
crash between sending and recording is reconciled from the exchange.

Version 6 adds ``runs`` (``runs.py``): one row per live, paper or backtest run
(its window, data source and hash, config, status, sample index, the strategy
row it ran as, what it spent), and a ``tokens`` column on ``history_records``
(prompt + completion tokens of a compose record) beside ``cost_usd``.

Version 7 adds ``runs.in_sample``: why a backtest's window is in-sample for its
model (it starts before the model's training cutoff), ``NULL`` when it is not
or the cutoff is unknown.

Version 8 adds ``runs.run_metrics``: the figures, curve and benchmark of a run,
computed from its history when it ends (``run_figures.py``), so the pages
read a finished run in one row instead of its every equity point.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from strategy_agent.errors import ConfigurationError

SCHEMA_VERSION = 8

Step = list[str] | Callable[[sqlite_utils.Database, str], None]

_V1 = [
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
]

# 2: LLM cost as a column, so the leaderboard sums it with an index, not JSON parsing
_V2 = [
    "ALTER TABLE history_records ADD COLUMN cost_usd REAL",
    "UPDATE history_records SET cost_usd = json_extract(payload, '$.cost_usd') "
    "WHERE kind = 'compose'",
    "CREATE INDEX idx_history_cost ON history_records (strategy_id, kind, cost_usd)",
]

# The duplicate checks run before the unique indexes are built: (what, SQL counting offenders).
_DUPLICATE_CHECKS = [
    (
        "history records written twice for one cycle",
        "SELECT COUNT(*) FROM (SELECT 1 FROM history_records "
        "GROUP BY strategy_id, reference_id, kind HAVING COUNT(*) > 1)",
    ),
    (
        "fills of one instruction recorded twice",
        "SELECT COUNT(*) FROM (SELECT 1 FROM fills WHERE instruction_id <> '' "
        "GROUP BY strategy_id, instruction_id HAVING COUNT(*) > 1)",
    ),
]


def _v3(db: sqlite_utils.Database, path: str) -> None:
    offenders = [(what, int(db.execute(sql).fetchone()[0])) for what, sql in _DUPLICATE_CHECKS]
    found = [f"{count} {what}" for what, count in offenders if count]
    if found:
        raise ConfigurationError(
            f"{path} holds duplicates from an older version ({'; '.join(found)}), so it cannot "
            f"be upgraded safely; nothing was changed. Keep a copy, then either start a new "
            f"database (--db or STRATEGY_AGENT_DB) or delete the affected strategies with the "
            f"older version and upgrade again"
        )
    for statement in [
        """CREATE TABLE cycles (
            strategy_id TEXT NOT NULL REFERENCES strategies(id),
            cycle INTEGER NOT NULL,
            compose_id TEXT NOT NULL,
            ts INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            PRIMARY KEY (strategy_id, cycle),
            UNIQUE (strategy_id, compose_id)
        )""",
        # Backfill: one row per stored cycle; its number from the records, else its order.
        """INSERT INTO cycles (strategy_id, cycle, compose_id, ts, ok)
        SELECT strategy_id,
            COALESCE(n, ROW_NUMBER() OVER (PARTITION BY strategy_id ORDER BY first_id)),
            reference_id, ts, ok
        FROM (
            SELECT strategy_id, reference_id, MIN(id) AS first_id, MIN(ts) AS ts,
                MAX(CAST(json_extract(payload, '$.cycle') AS INTEGER)) AS n,
                MIN(CASE WHEN kind = 'error' THEN 0 ELSE 1 END) AS ok
            FROM history_records GROUP BY strategy_id, reference_id
        )""",
        # A closed trade's P&L % is net of its fees since v3 (metrics.trade_net_pnl_pct);
        # trades stored before were all of contract size 1 (the simulated market).
        """UPDATE trades SET realized_pnl_pct =
            (COALESCE(realized_pnl, 0) - fees) / (quantity * entry_price) * 100.0
        WHERE quantity > 0 AND entry_price > 0""",
        """UPDATE trades SET payload = json_set(payload, '$.realized_pnl_pct', realized_pnl_pct)
        WHERE json_valid(payload) AND quantity > 0 AND entry_price > 0""",
        "CREATE UNIQUE INDEX uq_history_cycle_kind "
        "ON history_records (strategy_id, reference_id, kind)",
        "CREATE UNIQUE INDEX uq_fills_instruction ON fills (strategy_id, instruction_id) "
        "WHERE instruction_id <> ''",
        "ALTER TABLE equity ADD COLUMN cycle INTEGER",
        """UPDATE equity SET cycle = (
            SELECT c.cycle FROM cycles c
            WHERE c.strategy_id = equity.strategy_id AND c.ts = equity.ts AND c.ok = 1
            ORDER BY c.cycle LIMIT 1
        )""",
        """CREATE TABLE leases (
            strategy_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            acquired_ts INTEGER NOT NULL,
            heartbeat_ts INTEGER NOT NULL,
            host TEXT,
            pid INTEGER
        )""",
        """CREATE TABLE prompt_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            strategy_id TEXT NOT NULL REFERENCES strategies(id),
            version INTEGER NOT NULL,
            text TEXT NOT NULL,
            created_ts INTEGER NOT NULL,
            UNIQUE (strategy_id, version)
        )""",
        """CREATE TABLE IF NOT EXISTS llm_cache (
            key TEXT PRIMARY KEY,
            model TEXT,
            temperature FLOAT,
            reply TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd FLOAT,
            created_ts INTEGER
        )""",
    ]:
        db.execute(statement)
    try:
        db.execute(
            "CREATE UNIQUE INDEX uq_equity_cycle ON equity (strategy_id, cycle) "
            "WHERE cycle IS NOT NULL"
        )
    except sqlite3.IntegrityError as error:
        raise ConfigurationError(
            f"{path} holds two equity points for one cycle (written by the double-cycle bug "
            f"of an older version), so it cannot be upgraded safely; nothing was changed. "
            f"Start a new database (--db or STRATEGY_AGENT_DB) or delete the affected "
            f"strategies with the older version"
        ) from error
    _adopt_legacy_prompts(db)


def _adopt_legacy_prompts(db: sqlite_utils.Database) -> None:
    """Versions before 3 kept prompts by free-text name in ``prompts``: keep them, adopt what fits.

    A name that matches exactly one strategy's name becomes that strategy's
    history; the old table is kept as ``legacy_prompts`` (nothing is lost).
    """
    if "prompts" not in db.table_names():
        return
    db.execute(
        """INSERT INTO prompt_versions (strategy_id, version, text, created_ts)
        SELECT s.id, p.version, p.text, p.created_ts FROM prompts p
        JOIN strategies s ON s.name = p.name
        WHERE (SELECT COUNT(*) FROM strategies t WHERE t.name = p.name) = 1
        ORDER BY s.id, p.version"""
    )
    db.execute("ALTER TABLE prompts RENAME TO legacy_prompts")


# 4: downloaded candles (closed candles only, prices in the quote currency) and the gaps
# the exchange reported; ts and the gap bounds are candle open times in epoch ms.
_V4 = [
    """CREATE TABLE candles (
        exchange TEXT NOT NULL,
        symbol TEXT NOT NULL,
        interval TEXT NOT NULL,
        ts INTEGER NOT NULL,
        open REAL NOT NULL,
        high REAL NOT NULL,
        low REAL NOT NULL,
        close REAL NOT NULL,
        volume REAL NOT NULL,
        PRIMARY KEY (exchange, symbol, interval, ts)
    ) WITHOUT ROWID""",
    """CREATE TABLE candle_gaps (
        exchange TEXT NOT NULL,
        symbol TEXT NOT NULL,
        interval TEXT NOT NULL,
        start_ts INTEGER NOT NULL,
        end_ts INTEGER NOT NULL,
        recorded_ts INTEGER NOT NULL,
        PRIMARY KEY (exchange, symbol, interval, start_ts),
        CHECK (end_ts > start_ts)
    )""",
]

# 5: orders sent to a real exchange (execution/ccxt_gateway.py), one row per client order id,
# updated at each status change; quantities in the market's order unit, prices and fee_quote in
# the quote currency, fee in fee_currency; no foreign key, so the audit of real orders outlives
# a deleted strategy.
_V5 = [
    """CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        strategy_id TEXT NOT NULL,
        compose_id TEXT NOT NULL,
        instruction_id TEXT NOT NULL,
        exchange_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        qty REAL NOT NULL,
        order_type TEXT NOT NULL,
        limit_price REAL,
        reduce_only INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('sent', 'acknowledged', 'filled',
            'partially_filled', 'rejected', 'canceled', 'unknown')),
        exchange_order_id TEXT,
        filled_qty REAL NOT NULL DEFAULT 0,
        avg_price REAL,
        fee REAL,
        fee_currency TEXT,
        fee_quote REAL,
        dust INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        created_ts INTEGER NOT NULL,
        updated_ts INTEGER NOT NULL,
        UNIQUE (strategy_id, instruction_id)
    )""",
    "CREATE INDEX idx_orders_status ON orders (strategy_id, status)",
]

# 6: runs (runs.py): one row per live, paper or backtest run; windows in epoch ms, tokens and
# cost_usd what the run paid for (cache hits excluded). Its strategy row goes, its runs go too.
_RUNS_TABLE = """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('live', 'paper', 'backtest')),
    strategy_id TEXT NOT NULL REFERENCES strategies(id) ON DELETE CASCADE,
    batch_id TEXT,
    window_from_ms INTEGER,
    window_to_ms INTEGER,
    data_source TEXT NOT NULL,
    data_hash TEXT,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'stopped', 'failed')),
    status_reason TEXT,
    sample_index INTEGER NOT NULL DEFAULT 0 CHECK (sample_index >= 0),
    tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL,
    created_ts INTEGER NOT NULL,
    finished_ts INTEGER
)"""


def _v6(db: sqlite_utils.Database, path: str) -> None:
    """``runs``, and the tokens of each compose record as a column (backfilled from payloads).

    Idempotent: a file whose version was set back (tests do) keeps what it has.
    """
    db.execute(_RUNS_TABLE)
    db.execute("CREATE INDEX IF NOT EXISTS idx_runs_strategy ON runs (strategy_id)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_runs_batch ON runs (batch_id, created_ts)")
    columns = {row[1] for row in db.execute("PRAGMA table_info(history_records)").fetchall()}
    if "tokens" not in columns:
        db.execute("ALTER TABLE history_records ADD COLUMN tokens INTEGER")
    db.execute(
        """UPDATE history_records SET tokens = CASE
            WHEN json_type(payload, '$.prompt_tokens') = 'integer'
                OR json_type(payload, '$.completion_tokens') = 'integer'
            THEN COALESCE(CASE WHEN json_type(payload, '$.prompt_tokens') = 'integer'
                    THEN json_extract(payload, '$.prompt_tokens') END, 0)
                + COALESCE(CASE WHEN json_type(payload, '$.completion_tokens') = 'integer'
                    THEN json_extract(payload, '$.completion_tokens') END, 0)
        END
        WHERE kind = 'compose' AND json_valid(payload)"""
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_history_usage "
        "ON history_records (strategy_id, kind, tokens, cost_usd)"
    )


def _v7(db: sqlite_utils.Database, path: str) -> None:
    """``runs.in_sample``: the knowledge-leakage mark of a backtest (idempotent)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)").fetchall()}
    if "in_sample" not in columns:
        db.execute("ALTER TABLE runs ADD COLUMN in_sample TEXT")


def _v8(db: sqlite_utils.Database, path: str) -> None:
    """``runs.run_metrics``: a finished run's figures as JSON (idempotent; ``NULL`` until
    computed: the pages then compute them from the history)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)").fetchall()}
    if "run_metrics" not in columns:
        db.execute("ALTER TABLE runs ADD COLUMN run_metrics TEXT")


# Migrations by target version: _MIGRATIONS[0] brings an empty file to version 1.
_MIGRATIONS: list[Step] = [_V1, _V2, _v3, _V4, _V5, _v6, _v7, _v8]


def schema_version(db: sqlite_utils.Database) -> int:
    """The file's schema version (``PRAGMA user_version``)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database, path: str) -> None:
    """Bring the database to ``SCHEMA_VERSION``; the caller holds the write transaction.

    Raises ``ConfigurationError`` for a file newer than this program or one
    that holds duplicates an upgrade would have to drop.
    """
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"{path} has schema version {version}, newer than this program's "
            f"{SCHEMA_VERSION}: upgrade strategy-agent or use another --db file"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        step = _MIGRATIONS[target - 1]
        if callable(step):
            step(db, path)
        else:
            for statement in step:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {target}")
