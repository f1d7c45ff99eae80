"""Curves of the Leaderboard: equity normalised to 100 and each strategy's buy-and-hold.

Curves are drawn from bounded samples (``evenly_spaced``); the figures of the
table never are (``trading_history.run_figures``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.trading_history import metrics, page_queries
from strategy_agent.trading_history.run_figures import BENCHMARK_POINTS
from strategy_agent.views import memo

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore, StrategyRow


def evenly_spaced(size: int, points: int) -> np.ndarray:
    """At most ``points`` positions of ``range(size)`` evenly spaced, first and last included."""
    if size <= points:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, max(points, 2)).round().astype(np.int64))


def normalised_curve(request: UserRequest, ts: np.ndarray, equity: np.ndarray) -> pd.DataFrame:
    """Equity as a percentage of the initial capital, starting at 100 one candle before
    the first cycle (the moment the strategy started with its capital)."""
    start = int(ts[0]) - interval_ms(request.trading.interval)
    capital = request.trading.initial_capital
    values = metrics.rebased_to_100(np.r_[capital, equity], capital)
    return pd.DataFrame({"ts": np.r_[start, ts], "value": values})


def benchmark(store: SqliteStore, strategy: StrategyRow) -> pd.DataFrame | None:
    """Equal-weight buy-and-hold of the strategy's symbols over its own cycles (100 before fees).

    Bought at the close its first cycle saw, valued at the close each later
    cycle saw (the recorded candles, so exactly the prices the strategy
    traded on), with the strategy's ``fee_bps`` charged on entry and on the
    exit at the last close (``metrics.buy_and_hold_index``). ``None`` before two
    cycles recorded candles. Memoised per new equity point.
    """
    return benchmark_frame(strategy.name, strategy.request, _closes(store, strategy))


def benchmark_frame(
    name: str, request: UserRequest, closes: list[tuple[int, list[float]]]
) -> pd.DataFrame | None:
    """``benchmark`` of these (cycle ts, closes) rows of strategy ``name``; ``None`` under two."""
    if len(closes) < 2:
        return None
    index = metrics.buy_and_hold_index([row for _, row in closes], request.exchange.fee_bps)
    return index_frame(name, request, np.array([ts for ts, _ in closes], dtype=np.int64), index)


def index_frame(
    name: str, request: UserRequest, ts: np.ndarray, index: np.ndarray
) -> pd.DataFrame | None:
    """A buy-and-hold index (``metrics.buy_and_hold_index`` values at cycle times ``ts``) as
    the frame the charts draw, labelled with the symbols; ``None`` under two points."""
    if len(index) < 2:
        return None
    short = ", ".join(s.split("/")[0] for s in request.trading.symbols)
    return pd.DataFrame(
        {
            "ts": np.asarray(ts, dtype=np.int64),
            "value": index,
            "label": f"Buy & hold {short} ({name})",
        }
    )


def _closes(store: SqliteStore, strategy: StrategyRow) -> list[tuple[int, list[float]]]:
    """(cycle ts, close of each symbol) at up to ``BENCHMARK_POINTS`` cycles (memoised)."""
    symbols = list(strategy.request.trading.symbols)
    key = ("closes", tuple(symbols), *memo.strategy_version(store, strategy.id))
    return memo.remember(
        key, lambda: page_queries.sampled_closes(store, strategy.id, symbols, BENCHMARK_POINTS)
    )
