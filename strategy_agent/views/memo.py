"""Process-wide memo of expensive page queries, keyed by what the data looked like.

History is append-only, so a query result stays right until new rows arrive or
a strategy changes. Keys carry a cheap *data version* (largest row ids and the
strategies' last update, all index lookups), so a page that reruns on an idle
database reads SQLite almost not at all, and a change is seen at once. Safe
across Streamlit's script threads (one lock); bounded in size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from strategy_agent.trading_history import page_queries

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

T = TypeVar("T")
MAX_ENTRIES = 512

_lock = threading.Lock()
_entries: OrderedDict[Hashable, Any] = OrderedDict()


def remember(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` once per ``key`` (least recently used entries are dropped)."""
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key]  # type: ignore[no-any-return]
    value = compute()  # outside the lock: two threads may compute the same key once each
    with _lock:
        _entries[key] = value
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def get(key: Hashable) -> Any:
    with _lock:
        return _entries.get(key)


def put(key: Hashable, value: Any) -> None:
    with _lock:
        _entries[key] = value
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def clear() -> None:
    with _lock:
        _entries.clear()


def data_version(store: SqliteStore) -> tuple[Any, ...]:
    """Changes whenever any strategy, checkpoint or equity point is written or deleted."""
    return page_queries.data_version(store)


def strategy_version(store: SqliteStore, strategy_id: str) -> tuple[Any, ...]:
    """Changes whenever the strategy gets a new equity point (index lookups only)."""
    return page_queries.strategy_version(store, strategy_id)
