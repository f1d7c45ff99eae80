"""An LLM response cache in SQLite: the same model, temperature and prompt get the same reply.

A replay of the same data with the same prompt then costs nothing and gives
identical decisions. With ``--samples N`` each sample has its own key
(``sample_index``), so N samples at temperature > 0 are N independent draws
and a re-run reproduces all N; sample 0 keeps the key of earlier versions. The table is created by the store's migrations
(``schema.py``). Each thread that uses the cache opens one connection of its
own and keeps it (sqlite connections cannot cross threads), so a cycle's lookup
is one query, not a new connection; a write commits at once (``synchronous =
NORMAL`` on the store's WAL file, as the store itself writes). A replay hashes its
prompts with ``PromptHasher``: the same keys, the shared system message hashed once.
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
from typing import Any, NamedTuple

TABLE = "llm_cache"
# json's own string encoders (C): what json.dumps writes for a str, with and without ensure_ascii
_encode = json.encoder.encode_basestring
_encode_ascii = json.encoder.encode_basestring_ascii
_BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CachedReply:
    """A reply as the provider gave it, with its usage."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


def messages_json(messages: Sequence[dict[str, Any]]) -> str:
    """The canonical JSON of a prompt (sorted keys, no spaces, non-ASCII kept): what is hashed.

    Chat messages (``{"role": str, "content": str}``, the only shape the policy
    sends) are written by joining their parts, the very text ``json.dumps`` gives
    (``content`` sorts before ``role``; strings escaped by the same encoder); any
    other shape goes through ``json.dumps``.
    """
    parts = _chat_parts(messages)
    if parts is None:
        return json.dumps(list(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    texts = [f'{{"content":{_encode(content)},"role":{_encode(role)}}}' for content, role in parts]
    return "[" + ",".join(texts) + "]"


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


class PromptDigest(NamedTuple):
    """A prompt's ``prompt_hash`` (sha256 of ``messages_json``) and its ``cache_key``."""

    prompt_hash: str
    cache_key: str


class PromptHasher:
    """``prompt_hash`` and ``cache_key`` of one model's prompts, hashed incrementally.

    A replay sends the same system message every cycle: for a ``[system, user]``
    prompt, the JSON of everything before the user's text and both hashes' state
    over it are kept, and each prompt hashes only its user text on top. The bytes
    hashed are the very bytes ``messages_json`` and ``cache_key`` hash: ``json.dumps``
    escapes a string one character at a time, so the escaped whole is the escaped
    parts put together. Any other prompt is hashed whole.
    """

    def __init__(self, model: str, temperature: float | None, sample_index: int = 0) -> None:
        if sample_index < 0:
            raise ValueError(f"sample_index must be >= 0, got {sample_index}")
        self.model, self.temperature, self.sample_index = model, temperature, sample_index
        # json.dumps([model, temperature, prompt JSON(, sample)]) without the prompt JSON
        self._head = json.dumps([model, temperature], separators=(",", ":"))[:-1] + ","
        self._tail = ("," + json.dumps(sample_index) if sample_index else "") + "]"
        self._prefix: tuple[str, str, Any, Any] | None = None  # (system, role, 2 hash states)

    def digest(self, messages: Sequence[dict[str, Any]]) -> PromptDigest:
        """The prompt's hash and cache key (the same as ``messages_json`` and ``cache_key``)."""
        parts = _chat_parts(messages)
        if parts is None or len(parts) != 2:
            text = messages_json(messages)
            return PromptDigest(
                hashlib.sha256(text.encode("utf-8")).hexdigest(),
                cache_key(self.model, self.temperature, messages, self.sample_index),
            )
        (system, system_role), (user, user_role) = parts
        prefix = self._prefix
        if prefix is None or prefix[1] != system_role or prefix[0] != system:
            prefix = self._prefix = self._prefix_of(system, system_role)
        _, _, prompt_state, key_state = prefix
        body = _encode(user)  # the user's content as JSON
        end = ',"role":' + _encode(user_role) + "}]"
        prompt = prompt_state.copy()
        prompt.update(body.encode("utf-8"))
        prompt.update(end.encode("utf-8"))
        key = key_state.copy()
        key.update(_encode_ascii(body)[1:-1].encode("utf-8"))
        key.update((_encode_ascii(end)[1:-1] + '"' + self._tail).encode("utf-8"))
        return PromptDigest(prompt.hexdigest(), key.hexdigest())

    def _prefix_of(self, system: str, role: str) -> tuple[str, str, Any, Any]:
        start = '[{"content":' + _encode(system) + ',"role":' + _encode(role) + '},{"content":'
        prompt_state = hashlib.sha256(start.encode("utf-8"))
        key_state = hashlib.sha256((self._head + '"' + _encode_ascii(start)[1:-1]).encode("utf-8"))
        return system, role, prompt_state, key_state


def _chat_parts(messages: Sequence[dict[str, Any]]) -> list[tuple[str, str]] | None:
    """``[(content, role)]`` of chat messages, or ``None`` for any other shape."""
    parts = []
    for message in messages:
        if type(message) is not dict or len(message) != 2:
            return None
        content, role = message.get("content"), message.get("role")
        if type(content) is not str or type(role) is not str:
            return None
        parts.append((content, role))
    return parts


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
        *,
        key: str | None = None,
    ) -> CachedReply | None:
        """The stored reply for this exact prompt (and sample), or ``None``
        (``key``: its ``cache_key``, when the caller has it)."""
        if key is None:
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
        *,
        key: str | None = None,
    ) -> None:
        """Store (or replace) the reply for this exact prompt (and sample) (``key``: its
        ``cache_key``, when the caller has it)."""
        row = [
            key if key is not None else cache_key(model, temperature, messages, sample_index),
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
