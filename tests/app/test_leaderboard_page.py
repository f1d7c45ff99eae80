"""Leaderboard page: the ranking table and the normalised curves with buy-and-hold."""

from __future__ import annotations

import json

from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import (
    BLOWN_EQUITY,
    Populated,
    open_page,
    request,
    shown,
    texts,
    write_equity,
)


def test_ranking_table_and_curves_with_benchmark(populated: Populated) -> None:
    app = open_page("leaderboard")
    table = app.dataframe[0].value
    assert set(table["Strategy"]) == {"Trend", "Hold"}
    for column in ("Return (%)", "Sharpe", "Sortino", "Max drawdown (%)", "Win rate (%)"):
        assert column in table.columns
    for column in ("Profit factor", "LLM cost (USD)", "Cost per trade (USD)", "Model", "Prompt"):
        assert column in table.columns
    returns = list(table["Return (%)"])
    assert returns == sorted(returns, reverse=True)
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    names = [trace["name"] for trace in figure["data"]]
    assert len(names) == 4  # each strategy, then its own buy-and-hold (dashed, same colour)
    assert names[1] == "Buy & hold BTC, ETH (Hold)" and names[3].startswith(
        "Buy & hold BTC, ETH, SOL"
    )
    assert figure["data"][1]["line"]["dash"] == "dash"
    assert figure["layout"]["yaxis"]["title"]["text"] == "Value (start = 100)"
    assert all(trace["hovertemplate"] for trace in figure["data"])


def test_a_blown_up_strategy_does_not_break_the_board(populated: Populated) -> None:
    with SqliteStore(populated.db) as store:
        sid = store.create_strategy(request("Blown", "noop"), 5)
    write_equity(populated.db, sid, BLOWN_EQUITY)
    app = open_page("leaderboard")
    table = shown(app.dataframe[0]).set_index("Strategy")
    assert set(table.index) == {"Trend", "Hold", "Blown"}
    assert table.loc["Blown", "Return (%)"] == "-105.20 %"
    assert table.loc["Blown", "Sharpe"] == "n/a" and table.loc["Blown", "Sortino"] == "n/a"
    assert table.loc["Trend", "Sharpe"] not in {"n/a", "—"}
    assert "Blown: Sharpe and Sortino n/a" in texts(app)
    assert "-520.00 USDT" in texts(app)
