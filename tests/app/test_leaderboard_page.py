"""Leaderboard page: the ranking table and the normalised curves with buy-and-hold."""

from __future__ import annotations

import json

import pandas as pd
from streamlit.proto.Dataframe_pb2 import Dataframe as DataframeProto
from streamlit.testing.v1 import AppTest

from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.leaderboard import leaderboard
from tests.app.helpers import (
    BLOWN_EQUITY,
    Populated,
    open_page,
    request,
    shown,
    texts,
    write_equity,
)


def _table_of(app: AppTest, name: str) -> pd.DataFrame:
    """The displayed cells of the window table holding strategy ``name``."""
    for element in app.dataframe:
        frame = shown(element)
        if name in set(frame["Strategy"]):
            return frame
    raise AssertionError(f"no table holds {name}")


def test_one_ranking_table_per_window_and_curves_with_benchmark(populated: Populated) -> None:
    app = open_page("leaderboard")
    # Trend (150 cycles, 3 symbols) and Hold (40 cycles, 2 symbols) traded different windows
    assert len(app.dataframe) == 2
    assert [set(shown(element)["Strategy"]) for element in app.dataframe] == [{"Trend"}, {"Hold"}]
    assert "simulated market (seed 42) · 1h · BTC, ETH, SOL · " in texts(app)
    assert "The only strategy over this window: nothing to rank it against." in texts(app)
    assert "ranked only against others that traded the same data over the same window" in (
        texts(app)
    )
    table = app.dataframe[0].value
    for column in ("#", "Return (%)", "Sharpe", "Sortino", "Max drawdown (%)", "Win rate (%)"):
        assert column in table.columns
    for column in ("CAGR (%)", "Volatility (%)", "Calmar", "Drawdown duration", "Exposure (%)"):
        assert column in table.columns
    for column in ("Expectancy (USDT)", "Fees / gross P&L (%)", "Cost per trade (USD)"):
        assert column in table.columns
    assert _table_of(app, "Hold").loc[0, "Note"] == "Too few trades to judge (0 closed)"
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    names = [trace["name"] for trace in figure["data"]]
    assert len(names) == 4  # each strategy, then its own buy-and-hold (dashed, same colour)
    assert names[1] == "Buy & hold BTC, ETH (Hold)" and names[3].startswith(
        "Buy & hold BTC, ETH, SOL"
    )
    assert figure["data"][1]["line"]["dash"] == "dash"
    assert figure["layout"]["yaxis"]["title"]["text"] == "Value (start = 100)"
    assert all(trace["hovertemplate"] for trace in figure["data"])


def test_the_browser_header_sort_is_off_and_a_header_click_ranks_on_the_server(
    populated: Populated,
) -> None:
    curves = {  # one window: 41 hourly cycles on BTC/USDT from the same start
        "Steady": [10_000.0 + 10 * i for i in range(41)],
        "Better": [10_000.0 + 20 * i for i in range(41)],
        "Blown": BLOWN_EQUITY,
    }
    ids = {}
    with SqliteStore(populated.db) as store:
        for name in curves:
            ids[name] = store.create_strategy(request(name, "noop", ["BTC/USDT"]), 5)
    for name, equity in curves.items():
        write_equity(populated.db, ids[name], equity)
    with SqliteStore(populated.db) as store:
        group = next(g for g in leaderboard(store).windows if ids["Blown"] in g.ids)
    app = open_page("leaderboard")
    element = next(e for e in app.dataframe if e.key == f"rank_{group.key}")
    # column selection on: Streamlit turns the browser's header sort off
    assert list(element.proto.selection_mode) == [DataframeProto.SelectionMode.SINGLE_COLUMN]
    assert list(shown(element)["Strategy"]) == ["Better", "Steady", "Blown"]  # by return
    app.session_state[element.key] = {"selection": {"rows": [], "columns": ["Sharpe"], "cells": []}}
    app.run()
    element = next(e for e in app.dataframe if e.key == element.key)
    ranked = shown(element)
    assert list(ranked["Strategy"])[-1] == "Blown" and ranked["Sharpe"].iloc[-1] == "n/a"
    assert list(ranked["#"]) == ["1", "2", "—"]  # no Sharpe, no rank
    # a missing number goes to the browser as -inf, never empty: its own sort (column menu)
    # would otherwise place it among the numbers as if it were 0
    assert element.value["#"].iloc[-1] == float("-inf")
    assert element.value["Sharpe"].iloc[-1] == float("-inf")
    assert "3 strategies ranked by Sharpe (missing values last)." in texts(app)


def test_a_blown_up_strategy_does_not_break_the_board(populated: Populated) -> None:
    with SqliteStore(populated.db) as store:
        sid = store.create_strategy(request("Blown", "noop"), 5)
    write_equity(populated.db, sid, BLOWN_EQUITY)
    app = open_page("leaderboard")
    assert {name for e in app.dataframe for name in shown(e)["Strategy"]} == {
        "Trend",
        "Hold",
        "Blown",
    }
    blown = _table_of(app, "Blown").set_index("Strategy").loc["Blown"]
    assert blown["Return (%)"] == "-105.20 %"
    assert blown["Sharpe"] == "n/a" and blown["Sortino"] == "n/a" and blown["CAGR (%)"] == "n/a"
    assert _table_of(app, "Trend").loc[0, "Sharpe"] not in {"n/a", "—"}
    assert "Blown: CAGR, volatility, Sharpe, Sortino and Calmar n/a" in texts(app)
    assert "-520.00 USDT" in texts(app)
