"""An LLM response cache in SQLite: the same model, temperature and prompt get the same reply.

A replay of the same data with the same prompt then costs nothing and gives
identical decisions. With ``--samples N`` each sample has its own key
(``sample_index``), so N samples at temperature > 0 are N independent draws
and a re-run reproduces all N; sample 0 keeps the key of earlier versions. The table is created by the store's migrations
(``schema.py``). Each call opens its own short-lived connection, so the cache
can be created on one thread and used on another (sqlite connections cannot).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

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

    @contextmanager
    def _db(self) -> Iterator[sqlite_utils.Database]:
        with closing(sqlite3.connect(self.db_path, timeout=_BUSY_TIMEOUT_S)) as conn:
            yield sqlite_utils.Database(conn)
            conn.commit()

    def get(
        self,
        model: str,
        temperature: float | None,
        messages: Sequence[dict[str, Any]],
        sample_index: int = 0,
    ) -> CachedReply | None:
        """The stored reply for this exact prompt (and sample), or ``None``."""
        key = cache_key(model, temperature, messages, sample_index)
        with self._db() as db:
            rows = list(
                db.query(
                    f"select reply, prompt_tokens, completion_tokens, cost_usd from {TABLE} "
                    f"where key = ?",
                    [key],
                )
            )
        if not rows:
            return None
        row = rows[0]
        return CachedReply(
            text=row["reply"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            cost_usd=row["cost_usd"],
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
        row = {
            "key": cache_key(model, temperature, messages, sample_index),
            "model": model,
            "temperature": temperature,
            "reply": reply.text,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "cost_usd": reply.cost_usd,
            "created_ts": now_ms if now_ms is not None else int(time.time() * 1000),
        }
        with self._db() as db:
            db[TABLE].upsert(row, pk="key")  # type: ignore[union-attr]

    def __len__(self) -> int:
        with self._db() as db:
            return db[TABLE].count  # type: ignore[union-attr]
