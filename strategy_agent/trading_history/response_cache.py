"""An LLM response cache in SQLite: the same model, temperature and prompt get the same reply.

A replay of the same data with the same prompt then costs nothing and gives
identical decisions. With ``--samples N`` each sample has its own key
(``sample_index``), so N samples at temperature > 0 are N independent draws
and a re-run reproduces all N; sample 0 keeps the key of earlier versions. The table is created by the store's migrations
(``schema.py``). Each thread that uses the cache opens one connection of its
own and keeps it (sqlite connections cannot cross threads), so a cycle's lookup
is one query, not a new connection; a write commits at once (``synchronous =
NORMAL`` on the store's WAL file, as the store itself writes).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = "llm_cache"
_BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CachedReply:
    """A reply as the provider gave it, with its usage."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


def messages_json(messages: Sequence[dict[str, Any]]) -> str:
    """The canonical JSON of a prompt (sorted keys, no spaces): what is hashed."""
    return json.dumps(list(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(
    model: str,
    temperature: float | None,
    messages: Sequence[dict[str, Any]],
    sample_index: int = 0,
) -> str:
    """sha256 of (model, temperature, full prompt), plus the sample index when it is not 0.

    Sample 0 hashes exactly what earlier versions hashed, so existing caches stay valid.
    """
    if sample_index < 0:
        raise ValueError(f"sample_index must be >= 0, got {sample_index}")
    parts: list[Any] = [model, temperature, messages_json(messages)]
    if sample_index:
        parts.append(sample_index)
    material = json.dumps(parts, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResponseCache:
    """Replies keyed by ``cache_key`` in table ``llm_cache`` of ``db_path``."""

    def __init__(self, db_path: str | Path) -> None:
        from strategy_agent.trading_history.store import SqliteStore

        self.db_path = Path(db_path)
        SqliteStore(self.db_path).close()  # the table comes from the store's migrations
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use and kept."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=_BUSY_TIMEOUT_S)
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":  # durable on commit with WAL, as the store sets it
                conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (the next call opens a new one)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    def get(
        self,
        model: str,
        temperature: float | None,
        messages: Sequence[dict[str, Any]],
        sample_index: int = 0,
    ) -> CachedReply | None:
        """The stored reply for this exact prompt (and sample), or ``None``."""
        key = cache_key(model, temperature, messages, sample_index)
        row = (
            self._conn()
            .execute(
                f"select reply, prompt_tokens, completion_tokens, cost_usd from {TABLE} "
                f"where key = ?",
                [key],
            )
            .fetchone()
        )
        if row is None:
            return None
        return CachedReply(
            text=row[0], prompt_tokens=row[1], completion_tokens=row[2], cost_usd=row[3]
        )

    def put(
        self,
        model: str,
        temperature: float | None,
        messages: Sequence[dict[str, Any]],
        reply: CachedReply,
        now_ms: int | None = None,
        sample_index: int = 0,
    ) -> None:
        """Store (or replace) the reply for this exact prompt (and sample)."""
        row = [
            cache_key(model, temperature, messages, sample_index),
            model,
            temperature,
            reply.text,
            reply.prompt_tokens,
            reply.completion_tokens,
            reply.cost_usd,
            now_ms if now_ms is not None else int(time.time() * 1000),
        ]
        conn = self._conn()
        with conn:  # one transaction, committed (rolled back on an error)
            conn.execute(
                f"insert or replace into {TABLE} (key, model, temperature, reply, prompt_tokens, "
                f"completion_tokens, cost_usd, created_ts) values (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def __len__(self) -> int:
        return int(self._conn().execute(f"select count(*) from {TABLE}").fetchone()[0])
