"""Portfolio page: metrics, equity and drawdown chart, positions, candles with fills."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import Populated, open_page, request, texts, write_equity


def _length(array: Any) -> int:
    """Length of a plotly JSON array (plain list, or typed ``{"dtype", "bdata"}``)."""
    if isinstance(array, dict):
        return len(base64.b64decode(array["bdata"])) // np.dtype(array["dtype"]).itemsize
    return len(array)


def _figures(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def test_metrics_positions_and_charts_of_a_holding_strategy(populated: Populated) -> None:
    app = open_page("portfolio", selected_strategy=populated.hold_id)
    labels = {m.label for m in app.metric}
    assert {"Equity (USDT)", "Cash (USDT)", "Fees paid (USDT)"} <= labels
    positions = next(df.value for df in app.dataframe if "Holding time" in df.value.columns)
    assert list(positions["Symbol"]) == ["BTC/USDT", "ETH/USDT"]
    assert set(positions["Side"]) == {"long"}
    equity, candles = _figures(app)
    assert equity["layout"]["yaxis"]["title"]["text"] == "Equity (USDT)"
    assert equity["layout"]["yaxis2"]["title"]["text"] == "Drawdown (%)"
    assert equity["layout"]["xaxis2"]["title"]["text"] == "Time (UTC)"
    assert all("hovertemplate" in trace for trace in equity["data"])
    assert candles["data"][0]["type"] == "candlestick"
    assert candles["layout"]["yaxis"]["title"]["text"] == "Price (USDT)"


def test_candles_mark_the_strategy_buys_and_sells(populated: Populated) -> None:
    app = open_page("portfolio", selected_strategy=populated.trend_id)
    candles = _figures(app)[1]
    names = {trace.get("name") for trace in candles["data"]}
    assert "Buys" in names
    with SqliteStore(populated.db) as store:
        fills = [f for f in store.load_fills(populated.trend_id) if f.symbol == "BTC/USDT"]
    buys = next(t for t in candles["data"] if t.get("name") == "Buys")
    assert _length(buys["y"]) == sum(1 for f in fills if f.side == "buy")


def test_strategy_without_cycles_says_what_to_do(app_db: Path) -> None:
    with SqliteStore(app_db) as store:
        store.create_strategy(request("Fresh", "ema_crossover"), 1)
    app = open_page("portfolio")
    assert "No cycle yet" in texts(app)
    assert next(m for m in app.metric if m.label == "Equity (USDT)").value == "10,000.00"
    assert not app.get("plotly_chart")


def test_a_blown_book_says_so_and_shows_its_gross_exposure(populated: Populated) -> None:
    with SqliteStore(populated.db) as store:
        sid = store.create_strategy(request("Blown", "noop"), 5)
    write_equity(populated.db, sid, [10_000.0, 4_000.0, -2_000.0], gross=1_300_000.0)
    app = open_page("portfolio", selected_strategy=sid)
    metrics = {m.label: m.value for m in app.metric}
    exposure = next(m for m in app.metric if m.label == "Exposure (% of equity)")
    assert (exposure.value, exposure.delta) == ("n/a", "equity ≤ 0")
    assert metrics["Gross exposure (USDT)"] == "1,300,000.00"
    assert metrics["Equity (USDT)"] == "-2,000.00"
    assert any("Account blown" in str(e.value) for e in app.error)
