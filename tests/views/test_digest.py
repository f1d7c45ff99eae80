"""Digest queries: the rebuilt digest per instrument and the paged closed trades."""

from __future__ import annotations

import pytest

from strategy_agent.trading_history.digest import rebuild_digest
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.digest import closed_trades, digest_table
from tests.app.helpers import Populated, request


def test_digest_rows_match_the_digest_builder(store: SqliteStore, history: Populated) -> None:
    table = digest_table(store, history.trend_id).set_index("Symbol")
    last_ts = store.last_cycle_ts(history.trend_id)
    assert last_ts is not None
    digest = rebuild_digest(
        store.load_fills(history.trend_id), store.load_trades(history.trend_id), last_ts
    )
    assert set(table.index) == set(digest.by_instrument)
    for symbol, entry in digest.by_instrument.items():
        assert table.loc[symbol, "Closed trades"] == entry.trade_count
        assert table.loc[symbol, "Net realized P&L (USDT)"] == pytest.approx(entry.realized_pnl)


def test_closed_trades_paged_newest_exit_first(store: SqliteStore, history: Populated) -> None:
    total = len(store.load_trades(history.trend_id))
    assert total >= 3
    first = closed_trades(store, history.trend_id, page=1, page_size=2)
    assert first.total == total and first.pages == -(-total // 2)
    exits = list(first.rows["Exit"])
    assert exits == sorted(exits, reverse=True)
    every = closed_trades(store, history.trend_id, page=1, page_size=500).rows
    nets = sorted(every["Net P&L (USDT)"])
    expected = sorted((t.realized_pnl or 0.0) - t.fees for t in store.load_trades(history.trend_id))
    assert nets == pytest.approx(expected)


def test_no_cycle_no_digest(store: SqliteStore) -> None:
    sid = store.create_strategy(request("Fresh", "noop"), 1)
    assert digest_table(store, sid).empty
    assert closed_trades(store, sid).total == 0
