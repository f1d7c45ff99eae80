"""Queries of the Leaderboard: every strategy's metrics side by side, curves and a benchmark.

Per strategy, with ``trading_history.metrics`` (the one owner of the
definitions): return, Sharpe and Sortino over the equity curve, max drawdown
from the initial capital, win rate and profit factor over closed trades' net
P&L. The LLM cost is summed from the compose checkpoints. Curves are
normalised to 100 at the initial capital; the benchmark is an equal-weight
buy-and-hold of the strategies' symbols over the same period, priced from the
simulated market's history.

Reads are per strategy and memoised by its data version (``views.memo``): a
rerun on unchanged data reads almost nothing; a running strategy costs one
read of its own equity column per refresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.trading_history import metrics
from strategy_agent.views import memo
from strategy_agent.views.strategies import sampled_equity

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore, StrategyRow

CURVE_POINTS = 400
MIN_RATIO_POINTS = 30  # Sharpe/Sortino on fewer points are noise, annualised
BENCHMARK_POINTS = 400
YEAR_MS = 365.25 * 86_400_000
PROMPT_LABEL_CHARS = 48

LEADERBOARD_COLUMNS = [
    "Strategy",
    "Status",
    "Return (%)",
    "Sharpe",
    "Sortino",
    "Max drawdown (%)",
    "Win rate (%)",
    "Profit factor",
    "Trades",
    "Fees (USDT)",
    "LLM cost (USD)",
    "Cost per trade (USD)",
    "Equity (USDT)",
    "Cycles",
    "Model",
    "Prompt",
    "id",
]


@dataclass
class Leaderboard:
    """The table, each strategy's normalised curve, and the buy-and-hold benchmark."""

    table: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    benchmark: pd.DataFrame | None = None


@dataclass(frozen=True)
class CurveStats:
    """What one strategy's full equity column says (computed once per new point)."""

    equity: float | None
    fees_paid: float
    max_drawdown_pct: float | None
    sharpe: float | None
    sortino: float | None


def leaderboard(store: SqliteStore) -> Leaderboard:
    """All strategies, best return first (recomputed only when the data changed)."""
    return memo.remember(("leaderboard", *memo.data_version(store)), lambda: _build(store))


def _build(store: SqliteStore) -> Leaderboard:
    strategies = store.list_strategies()
    if not strategies:
        return Leaderboard(table=pd.DataFrame(columns=LEADERBOARD_COLUMNS))
    requests = {row.id: row.request for row in strategies}
    costs = llm_costs(store, requests)
    rows: list[dict[str, Any]] = []
    curves: dict[str, pd.DataFrame] = {}
    for strategy in strategies:
        rows.append(_row(store, strategy, costs.get(strategy.id)))
        points = sampled_equity(store, strategy.id, CURVE_POINTS)
        if points:
            ts = np.array([t for t, _ in points], dtype=np.int64)
            equity = np.array([e for _, e in points], dtype=np.float64)
            curves[f"{strategy.name} ({strategy.id})"] = normalised_curve(
                strategy.request, ts, equity
            )
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    table = table.sort_values("Return (%)", ascending=False, na_position="last")
    return Leaderboard(
        table=table.reset_index(drop=True),
        curves=curves,
        benchmark=benchmark(store, list(requests.values()), curves),
    )


def _row(store: SqliteStore, strategy: StrategyRow, cost: float | None) -> dict[str, Any]:
    request = strategy.request
    capital = request.trading.initial_capital
    stats = curve_stats(store, strategy.id, capital)
    pnls = trade_net_pnls(store, strategy.id)
    trades = len(pnls)
    win_rate = metrics.win_rate(pnls)
    equity = stats.equity if stats.equity is not None else capital
    return {
        "Strategy": strategy.name,
        "Status": strategy.status,
        "Return (%)": (equity / capital - 1.0) * 100.0,
        "Sharpe": stats.sharpe,
        "Sortino": stats.sortino,
        "Max drawdown (%)": stats.max_drawdown_pct,
        "Win rate (%)": None if win_rate is None else win_rate * 100.0,
        "Profit factor": metrics.profit_factor(pnls),
        "Trades": trades,
        "Fees (USDT)": stats.fees_paid,
        "LLM cost (USD)": cost,
        "Cost per trade (USD)": cost / trades if cost is not None and trades else None,
        "Equity (USDT)": equity,
        "Cycles": store.cycle_count(strategy.id),
        "Model": f"{request.llm.provider}/{request.llm.model_id}",
        "Prompt": prompt_label(request),
        "id": strategy.id,
    }


def curve_stats(store: SqliteStore, strategy_id: str, initial_capital: float) -> CurveStats:
    """Drawdown and ratios over the strategy's whole equity column (memoised per new point)."""
    key = ("curve_stats", initial_capital, *memo.strategy_version(store, strategy_id))
    return memo.remember(key, lambda: _curve_stats(store, strategy_id, initial_capital))


def _curve_stats(store: SqliteStore, strategy_id: str, initial_capital: float) -> CurveStats:
    rows = store.db.execute(
        "SELECT ts, equity, fees_paid FROM equity WHERE strategy_id = ? ORDER BY ts, id",
        [strategy_id],
    ).fetchall()
    if not rows:
        return CurveStats(None, 0.0, None, None, None)
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    equity = np.array([r[1] for r in rows], dtype=np.float64)
    per_year = _periods_per_year(ts)
    return CurveStats(
        equity=float(equity[-1]),
        fees_paid=float(rows[-1][2]),
        max_drawdown_pct=metrics.max_drawdown_pct(equity, initial_capital),
        sharpe=metrics.sharpe_ratio(equity, per_year) if per_year else None,
        sortino=metrics.sortino_ratio(equity, per_year) if per_year else None,
    )


def normalised_curve(request: UserRequest, ts: np.ndarray, equity: np.ndarray) -> pd.DataFrame:
    """Equity as a percentage of the initial capital, starting at 100 one candle before
    the first cycle (the moment the strategy started with its capital)."""
    start = int(ts[0]) - interval_ms(request.trading.interval)
    values = equity / request.trading.initial_capital * 100.0
    return pd.DataFrame({"ts": np.r_[start, ts], "value": np.r_[100.0, values]})


def _periods_per_year(ts: np.ndarray) -> float | None:
    """Points per year of a (possibly thinned) curve, from its actual time spacing.

    ``None`` below ``MIN_RATIO_POINTS`` points: ratios are not shown that early.
    """
    if len(ts) < MIN_RATIO_POINTS or ts[-1] <= ts[0]:
        return None
    return float(YEAR_MS * (len(ts) - 1) / (ts[-1] - ts[0]))


def trade_net_pnls(store: SqliteStore, strategy_id: str) -> list[float]:
    """Net P&L (after fees) of each closed trade: one numeric column, read in SQL."""
    rows = store.db.execute(
        "SELECT COALESCE(realized_pnl, 0) - fees FROM trades WHERE strategy_id = ?",
        [strategy_id],
    ).fetchall()
    return [float(r[0]) for r in rows]


def llm_costs(store: SqliteStore, requests: dict[str, UserRequest]) -> dict[str, float]:
    """Total LLM cost in USD per strategy that uses an LLM and has a known cost."""
    costs: dict[str, float] = {}
    for sid, request in requests.items():
        if request.llm.is_builtin:
            continue  # built-in rules never cost anything
        total = store.llm_cost(sid)
        if total is not None:
            costs[sid] = total
    return costs


def prompt_label(request: UserRequest) -> str:
    """A short name of the strategy's prompt: template id, the custom text's start, or the rule."""
    trading = request.trading
    if trading.custom_prompt and trading.custom_prompt.strip():
        text = " ".join(trading.custom_prompt.split())
        return text if len(text) <= PROMPT_LABEL_CHARS else text[: PROMPT_LABEL_CHARS - 1] + "…"
    if trading.template_id:
        return f"template: {trading.template_id}"
    return "built-in rule" if request.llm.is_builtin else "(no prompt)"


def benchmark(
    store: SqliteStore, requests: list[UserRequest], curves: dict[str, pd.DataFrame]
) -> pd.DataFrame | None:
    """Equal-weight buy-and-hold of every symbol traded, over the curves' whole period.

    Priced on the first strategy's market (seed and interval); the value at a
    time ``t`` uses the close of the last candle closed at ``t``, as the
    strategies themselves see prices. ``None`` without a curve or market history.
    """
    if not curves or not requests:
        return None
    start = min(int(frame["ts"].iloc[0]) for frame in curves.values())
    end = max(int(frame["ts"].iloc[-1]) for frame in curves.values())
    symbols = list(dict.fromkeys(s for r in requests for s in r.trading.symbols))
    closes = _closes(requests[0], symbols, start, end)
    if closes is None or closes.empty:
        return None
    normalised = closes.div(closes.iloc[0]).mean(axis=1) * 100.0
    short = ", ".join(s.split("/")[0] for s in symbols)
    return pd.DataFrame(
        {
            "ts": normalised.index.to_numpy(dtype=np.int64),
            "value": normalised.to_numpy(),
            "label": f"Buy & hold (equal weight {short})",
        }
    )


def _closes(request: UserRequest, symbols: list[str], start: int, end: int) -> pd.DataFrame | None:
    """Closes per symbol (columns) indexed by the time they were known (close time)."""
    from strategy_agent.clock import ManualClock
    from strategy_agent.factory import build_market

    interval = request.trading.interval
    step = interval_ms(interval)
    try:
        source, _ = build_market(request, ManualClock(end))
    except Exception:  # a market we cannot price offline: no benchmark
        return None
    history = getattr(source, "history", None)
    origin = getattr(source, "origin_ms", None)
    if history is None or origin is None:
        return None
    first = max((start - origin) // step - 1, 0)
    last = max((end - origin) // step - 1, first)
    stride = max(1, (last - first) // BENCHMARK_POINTS)
    columns = {}
    for symbol in symbols:
        frame = history(symbol, interval, first, last + 1)
        if frame.empty:
            return None
        picks = np.unique(np.r_[0 : len(frame) : stride, len(frame) - 1])
        frame = frame.iloc[picks]
        columns[symbol] = pd.Series(frame["close"].to_numpy(), index=frame["ts"].to_numpy() + step)
    return pd.DataFrame(columns).dropna()
