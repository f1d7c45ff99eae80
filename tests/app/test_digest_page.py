"""Digest page: per-instrument digest rows and the closed trades list."""

from __future__ import annotations

from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, open_page, texts


def test_digest_and_closed_trades_of_a_trading_strategy(populated: Populated) -> None:
    app = open_page("digest", selected_strategy=populated.trend_id)
    digest = next(df.value for df in app.dataframe if "Closed trades" in df.value.columns)
    assert set(digest["Symbol"]) <= {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    with SqliteStore(populated.db) as store:
        trades = store.load_trades(populated.trend_id)
    assert int(digest["Closed trades"].sum()) == len(trades)
    assert f"{len(trades):,} in all" in texts(app)
    listed = next(df.value for df in app.dataframe if "Net P&L (USDT)" in df.value.columns)
    assert len(listed) == min(len(trades), 50)


def test_open_positions_only_say_no_round_trip_yet(populated: Populated) -> None:
    app = open_page("digest", selected_strategy=populated.hold_id)
    assert "No round trip closed yet" in texts(app)
