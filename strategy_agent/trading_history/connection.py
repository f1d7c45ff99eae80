"""One SQLite connection to the strategy database, migrated, with all-or-nothing writes.

One connection per thread: it refuses other threads (``check_same_thread``);
a worker thread opens its own store on the same path. WAL is on, so readers
never wait for the writer, and every write transaction starts with ``BEGIN
IMMEDIATE`` so two writers queue on the busy timeout instead of failing with
"database is locked".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlite_utils

from strategy_agent.trading_history.schema import migrate, schema_version

DEFAULT_DB_PATH = Path("data/strategy_agent.db")
BUSY_TIMEOUT_S = 30.0


class StoreConnection:
    """The connection every part of the store shares (the base of ``SqliteStore``)."""

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
            with self.write():
                migrate(self.db, self.path)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection (the store cannot be used afterwards)."""
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The file's schema version (``PRAGMA user_version``), raised by migrations."""
        return schema_version(self.db)

    @contextmanager
    def write(self) -> Iterator[None]:
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

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """The rows of a query as dicts."""
        return list(self.db.query(sql, params))

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """The first column of the first row, or ``None``."""
        row = self.db.execute(sql, params).fetchone()
        return None if row is None else row[0]
