"""Figures: titled axes with units, a hover on every trace, fills on their candle."""

from __future__ import annotations

import pandas as pd
import pytest

from strategy_agent.views.charts import candles_figure, comparison_figure, equity_figure

HOUR = 3_600_000


def test_equity_figure_has_drawdown_in_percent() -> None:
    points = pd.DataFrame({"ts": [0, HOUR, 2 * HOUR, 3 * HOUR], "equity": [100, 120, 90, 130]})
    figure = equity_figure(points, 100.0)
    equity, drawdown = figure.data
    assert list(drawdown.y) == pytest.approx([0.0, 0.0, -25.0, 0.0])
    assert figure.layout.yaxis.title.text == "Equity (USDT)"
    assert figure.layout.yaxis2.title.text == "Drawdown (%)"
    assert figure.layout.xaxis2.title.text == "Time (UTC)"
    assert "USDT" in equity.hovertemplate and "%" in drawdown.hovertemplate


def test_fills_sit_on_the_candle_whose_close_they_took() -> None:
    candles = pd.DataFrame(
        {
            "ts": [0, HOUR, 2 * HOUR],
            "open": [1.0, 1.1, 1.2],
            "high": [1.2, 1.3, 1.4],
            "low": [0.9, 1.0, 1.1],
            "close": [1.1, 1.2, 1.3],
            "volume": [5.0, 5.0, 5.0],
        }
    )
    fills = pd.DataFrame({"ts": [2 * HOUR], "side": ["buy"], "price": [1.2], "quantity": [3.0]})
    figure = candles_figure("X/USDT", candles, fills, HOUR)
    buys = next(t for t in figure.data if t.name == "Buys")
    assert pd.Timestamp(buys.x[0]) == pd.Timestamp(HOUR, unit="ms")  # plotly stores naive UTC
    assert not any(t.name == "Sells" for t in figure.data)
    assert figure.layout.yaxis.title.text == "Price (USDT)"


def test_comparison_adds_each_strategys_dashed_benchmark_in_its_colour() -> None:
    curve = pd.DataFrame({"ts": [0, HOUR], "value": [100.0, 101.0]})
    bench = pd.DataFrame({"ts": [0, HOUR], "value": [100.0, 99.0], "label": "Buy & hold BTC (A)"})
    other = pd.DataFrame({"ts": [0, HOUR], "value": [100.0, 98.0]})
    figure = comparison_figure({"A": curve, "B": other}, {"A": bench})
    assert [t.name for t in figure.data] == ["A", "Buy & hold BTC (A)", "B"]
    assert figure.data[1].line.dash == "dash"
    assert figure.data[1].line.color == figure.data[0].line.color
    assert figure.data[1].legendgroup == "A" and figure.data[1].showlegend is False
    assert figure.layout.yaxis.title.text == "Value (start = 100)"


def test_equity_figure_draws_buy_and_hold_in_money() -> None:
    points = pd.DataFrame({"ts": [0, HOUR], "equity": [10_000.0, 10_100.0]})
    bench = pd.DataFrame({"ts": [0, HOUR], "value": [100.0, 95.0], "label": "Buy & hold BTC"})
    figure = equity_figure(points, 10_000.0, benchmark=bench)
    line = next(t for t in figure.data if t.name == "Buy & hold BTC")
    assert list(line.y) == pytest.approx([10_000.0, 9_500.0])
