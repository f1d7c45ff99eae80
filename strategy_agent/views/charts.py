"""Plotly figures of the pages: every axis titled with its unit, every trace with a hover.

Functions take plain frames (``ts`` in epoch ms UTC) and return figures; they
never query anything. Time axes are UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from strategy_agent.trading_history import metrics

UP = "#16a34a"
DOWN = "#dc2626"
ACCENT = "#2563eb"
BENCHMARK = "#6b7280"
_PALETTE = (
    "#2563eb",
    "#f59e0b",
    "#10b981",
    "#8b5cf6",
    "#ef4444",
    "#06b6d4",
    "#ec4899",
    "#84cc16",
    "#f97316",
    "#14b8a6",
)


def _times(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts.astype("int64"), unit="ms", utc=True)


def _style(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        font={"size": 12},
    )
    return fig


def equity_figure(
    points: pd.DataFrame,
    initial_capital: float,
    ccy: str = "USDT",
    benchmark: pd.DataFrame | None = None,
) -> go.Figure:
    """Equity over time with its drawdown below (``points``: ts, equity).

    The drawdown is ``metrics.drawdown_pct`` from the initial capital (shown
    negative). ``benchmark`` (ts, value with start = 100, label) is drawn in
    money: what the initial capital held in buy-and-hold would be worth.
    """
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.06,
    )
    times = _times(points["ts"])
    equity = points["equity"].astype(float)
    drawdown = -metrics.drawdown_pct(equity.to_numpy(), initial_capital)
    fig.add_trace(
        go.Scatter(
            x=times,
            y=equity,
            mode="lines",
            name="Equity",
            line={"color": ACCENT, "width": 2},
            hovertemplate=f"%{{y:,.2f}} {ccy}<extra>Equity</extra>",
        ),
        row=1,
        col=1,
    )
    if benchmark is not None and not benchmark.empty:
        label = str(benchmark["label"].iloc[0]) if "label" in benchmark else "Buy and hold"
        fig.add_trace(
            go.Scatter(
                x=_times(benchmark["ts"]),
                y=benchmark["value"].astype(float) * initial_capital / 100.0,
                mode="lines",
                name=label,
                line={"color": BENCHMARK, "width": 1.5, "dash": "dash"},
                hovertemplate=f"%{{y:,.2f}} {ccy}<extra>{label}</extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_hline(
        y=initial_capital,
        line={"color": BENCHMARK, "dash": "dot", "width": 1},
        annotation_text="initial capital",
        annotation_position="bottom right",
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=times,
            y=drawdown,
            mode="lines",
            name="Drawdown",
            fill="tozeroy",
            line={"color": DOWN, "width": 1},
            hovertemplate="%{y:.2f} %<extra>Drawdown</extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text=f"Equity ({ccy})", tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(title_text="Drawdown (%)", ticksuffix=" %", row=2, col=1)
    fig.update_xaxes(title_text="Time (UTC)", row=2, col=1)
    return _style(fig, 460)


def candles_figure(
    symbol: str,
    candles: pd.DataFrame,
    fills: pd.DataFrame,
    interval_ms: int,
    ccy: str = "USDT",
) -> go.Figure:
    """Candlesticks of ``symbol`` with the strategy's buys and sells marked.

    A fill at time ``t`` happened at the close of the candle that opened at
    ``t - interval_ms``, so its marker sits on that candle at the fill price.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Candlestick(
            x=_times(candles["ts"]),
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            name=symbol,
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        )
    )
    for side, marker, color in (("buy", "triangle-up", UP), ("sell", "triangle-down", DOWN)):
        chosen = fills[fills["side"] == side] if not fills.empty else fills
        if chosen.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=_times(chosen["ts"] - interval_ms),
                y=chosen["price"],
                mode="markers",
                name=f"{side.capitalize()}s",
                marker={
                    "symbol": marker,
                    "size": 12,
                    "color": color,
                    "line": {"width": 1, "color": "#111827"},
                },
                customdata=chosen[["quantity"]].to_numpy(),
                hovertemplate=(
                    f"{side} %{{customdata[0]:.6g}} @ %{{y:,.2f}} {ccy}<extra>{symbol}</extra>"
                ),
            )
        )
    fig.update_layout(xaxis_rangeslider_visible=False)
    fig.update_yaxes(title_text=f"Price ({ccy})", separatethousands=True)
    fig.update_xaxes(title_text="Time (UTC)")
    return _style(fig, 420)


def comparison_figure(
    curves: Mapping[str, pd.DataFrame], benchmarks: Mapping[str, pd.DataFrame] | None = None
) -> go.Figure:
    """Equity curves normalised to 100 at their start, each with its buy-and-hold line.

    ``curves``: label -> frame (ts, value); ``benchmarks``: the same labels ->
    frame (ts, value, label), drawn dashed in the colour of its strategy and
    toggled with it from the legend.
    """
    fig = go.Figure()
    for index, (label, frame) in enumerate(curves.items()):
        color = _PALETTE[index % len(_PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=_times(frame["ts"]),
                y=frame["value"],
                mode="lines",
                name=label,
                legendgroup=label,
                line={"color": color, "width": 2},
                hovertemplate="%{y:.2f}<extra>" + label + "</extra>",
            )
        )
        bench = (benchmarks or {}).get(label)
        if bench is None or bench.empty:
            continue
        bench_label = str(bench["label"].iloc[0]) if "label" in bench else "Buy and hold"
        fig.add_trace(
            go.Scatter(
                x=_times(bench["ts"]),
                y=bench["value"],
                mode="lines",
                name=bench_label,
                legendgroup=label,
                showlegend=False,
                line={"color": color, "width": 1.5, "dash": "dash"},
                opacity=0.7,
                hovertemplate="%{y:.2f}<extra>" + bench_label + "</extra>",
            )
        )
    fig.add_hline(y=100, line={"color": "#d1d5db", "width": 1})
    fig.update_yaxes(title_text="Value (start = 100)")
    fig.update_xaxes(title_text="Time (UTC)")
    return _style(fig, 440)
