"""Leaderboard page: the ranking table and the normalised curves with buy-and-hold."""

from __future__ import annotations

import json

from tests.app.helpers import Populated, open_page


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
    assert len(names) == 3
    assert names[-1].startswith("Buy & hold")
    assert figure["layout"]["yaxis"]["title"]["text"] == "Value (start = 100)"
    assert all(trace["hovertemplate"] for trace in figure["data"])
