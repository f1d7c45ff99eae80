from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from strategy_agent.trading_history.response_cache import CachedReply, ResponseCache, cache_key

MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "context"}]


def test_put_then_get_returns_the_reply_and_usage(db_path: Path) -> None:
    cache = ResponseCache(db_path)
    assert cache.get("openai/m", 0.0, MESSAGES) is None
    reply = CachedReply('{"items": []}', prompt_tokens=10, completion_tokens=3, cost_usd=0.002)
    cache.put("openai/m", 0.0, MESSAGES, reply, now_ms=5)
    assert cache.get("openai/m", 0.0, MESSAGES) == reply
    assert len(cache) == 1


def test_key_depends_on_model_temperature_and_every_message(db_path: Path) -> None:
    cache = ResponseCache(db_path)
    cache.put("openai/m", 0.0, MESSAGES, CachedReply("a"))
    assert cache.get("openai/other", 0.0, MESSAGES) is None
    assert cache.get("openai/m", 0.7, MESSAGES) is None
    assert cache.get("openai/m", None, MESSAGES) is None
    changed = [MESSAGES[0], {"role": "user", "content": "context!"}]
    assert cache.get("openai/m", 0.0, changed) is None
    assert cache_key("m", 0.0, MESSAGES) == cache_key("m", 0.0, [dict(m) for m in MESSAGES])
    assert len(cache_key("m", 0.0, MESSAGES)) == 64


def test_put_replaces_and_survives_a_new_instance(db_path: Path) -> None:
    ResponseCache(db_path).put("m", None, MESSAGES, CachedReply("first"))
    ResponseCache(db_path).put("m", None, MESSAGES, CachedReply("second", 1, 2, None))
    again = ResponseCache(db_path)
    assert again.get("m", None, MESSAGES) == CachedReply("second", 1, 2, None)
    assert len(again) == 1


def test_usable_from_another_thread_and_table_shares_the_database(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("create table other (id integer primary key)")
    cache = ResponseCache(db_path)
    found: list[CachedReply | None] = []

    def worker() -> None:
        cache.put("m", 0.0, MESSAGES, CachedReply("from thread"))
        found.append(cache.get("m", 0.0, MESSAGES))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert found == [CachedReply("from thread")]
    with sqlite3.connect(db_path) as conn:
        tables = {
            row[0] for row in conn.execute("select name from sqlite_master where type='table'")
        }
    assert {"other", "llm_cache"} <= tables
