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


def test_comparison_adds_a_dashed_benchmark() -> None:
    curve = pd.DataFrame({"ts": [0, HOUR], "value": [100.0, 101.0]})
    bench = pd.DataFrame({"ts": [0, HOUR], "value": [100.0, 99.0], "label": "Buy & hold (BTC)"})
    figure = comparison_figure({"A": curve}, bench)
    assert [t.name for t in figure.data] == ["A", "Buy & hold (BTC)"]
    assert figure.data[1].line.dash == "dash"
    assert figure.layout.yaxis.title.text == "Value (start = 100)"
