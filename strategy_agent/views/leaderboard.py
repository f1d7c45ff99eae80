"""Queries of the Leaderboard: every strategy's metrics side by side, curves and benchmarks.

Per strategy, with ``trading_history.metrics`` (the one owner of the
definitions): return, Sharpe and Sortino over the equity curve, max drawdown
from the initial capital, win rate and profit factor over closed trades' net
P&L. The LLM cost is summed from the compose checkpoints. Curves are
normalised to 100 at the initial capital; each strategy's benchmark is an
equal-weight buy-and-hold of its own symbols over its own span, priced from the
candles its cycles recorded (no market is rebuilt).

One strategy never breaks the board: a blown-up account (equity at or below
zero) shows its return and drawdown with Sharpe and Sortino "n/a", and a row
whose figures cannot be computed at all shows "n/a" with the reason, while the
others render. Reads go through ``trading_history.page_queries`` and are
memoised by the data version (``views.memo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.trading_history import metrics, page_queries
from strategy_agent.views import format as fmt
from strategy_agent.views import memo

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore, StrategyRow

CURVE_POINTS = 400
MIN_RATIO_POINTS = 30  # Sharpe/Sortino on fewer points are noise, annualised
BENCHMARK_POINTS = 400
YEAR_MS = 365.25 * 86_400_000
PROMPT_LABEL_CHARS = 48
REASON_CHARS = 300

FIGURE_COLUMNS = [
    "Return (%)",
    "Buy & hold (%)",
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
]
LEADERBOARD_COLUMNS = ["Strategy", "Status", "Note", *FIGURE_COLUMNS, "Model", "Prompt", "id"]
RISK_COLUMNS = ["Sharpe", "Sortino"]


@dataclass(frozen=True)
class Unavailable:
    """Figures of one row shown as "n/a", and why (a sentence for a caption or tooltip)."""

    columns: list[str]
    reason: str


@dataclass
class Leaderboard:
    """The table, each strategy's normalised curve and its own buy-and-hold benchmark.

    ``curves`` and ``benchmarks`` share their keys (``"name (id)"``); frames
    have ``ts`` (epoch ms) and ``value`` (start = 100), benchmarks a ``label``.
    ``unavailable`` maps a strategy id to the figures its row cannot show.
    """

    table: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    benchmarks: dict[str, pd.DataFrame] = field(default_factory=dict)
    unavailable: dict[str, Unavailable] = field(default_factory=dict)


@dataclass(frozen=True)
class CurveStats:
    """What one strategy's full equity column says (computed once per new point).

    ``ruin_ts``/``ruin_equity``: when and at what value equity first reached
    zero or below (the account blew up); ``None`` for a live account.
    """

    equity: float | None
    fees_paid: float
    max_drawdown_pct: float | None
    sharpe: float | None
    sortino: float | None
    ruin_ts: int | None = None
    ruin_equity: float | None = None


def leaderboard(store: SqliteStore) -> Leaderboard:
    """All strategies, best return first (recomputed only when the data changed)."""
    return memo.remember(("leaderboard", *memo.data_version(store)), lambda: _build(store))


def _build(store: SqliteStore) -> Leaderboard:
    board = Leaderboard(table=pd.DataFrame(columns=LEADERBOARD_COLUMNS))
    rows: list[dict[str, Any]] = []
    for strategy_id, name, status in page_queries.strategy_choices(store):
        try:
            strategy = store.get_strategy(strategy_id)
            rows.append(_strategy_row(store, strategy, board))
        except Exception as error:  # one unreadable strategy never takes the board down
            rows.append(_unreadable_row(strategy_id, name, status, error, board))
    if not rows:
        return board
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    table = table.sort_values("Return (%)", ascending=False, na_position="last")
    board.table = table.reset_index(drop=True)
    return board


def _strategy_row(store: SqliteStore, strategy: StrategyRow, board: Leaderboard) -> dict[str, Any]:
    """The strategy's row; its curve and benchmark go into ``board``."""
    row = _row(store, strategy, _llm_cost(store, strategy.request, strategy.id))
    label = f"{strategy.name} ({strategy.id})"
    points = page_queries.sampled_equity(store, strategy.id, CURVE_POINTS)
    if points:
        ts = np.array([t for t, _ in points], dtype=np.int64)
        equity = np.array([e for _, e in points], dtype=np.float64)
        board.curves[label] = normalised_curve(strategy.request, ts, equity)
    bench = benchmark(store, strategy)
    if bench is not None:
        board.benchmarks[label] = bench
        row["Buy & hold (%)"] = metrics.total_return_pct(bench["value"].to_numpy())
    stats = curve_stats(store, strategy.id, strategy.request.trading.initial_capital)
    if stats.ruin_ts is not None:
        row["Note"] = f"Account blown: equity {fmt.money(stats.equity)}"
        board.unavailable[strategy.id] = Unavailable(
            RISK_COLUMNS,
            f"{' and '.join(RISK_COLUMNS)} n/a: the account is blown (equity reached "
            f"{fmt.money(stats.ruin_equity)} on {fmt.ts(stats.ruin_ts)}, now "
            f"{fmt.money(stats.equity)}), and returns after equity falls to 0 or below "
            f"are undefined.",
        )
    return row


def _unreadable_row(
    strategy_id: str, name: str, status: str, error: Exception, board: Leaderboard
) -> dict[str, Any]:
    reason = " ".join(str(error).split()) or type(error).__name__
    if len(reason) > REASON_CHARS:
        reason = reason[: REASON_CHARS - 1] + "…"
    board.unavailable[strategy_id] = Unavailable(FIGURE_COLUMNS, f"figures n/a: {reason}")
    row: dict[str, Any] = dict.fromkeys(LEADERBOARD_COLUMNS)
    row.update({"Strategy": name, "Status": status, "Note": "Could not be read", "id": strategy_id})
    return row


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
        "Note": None,
        "Return (%)": metrics.return_pct(equity, capital),
        "Buy & hold (%)": None,
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
    column = page_queries.equity_column(store, strategy_id)
    if column.equity.size == 0:
        return CurveStats(None, 0.0, None, None, None)
    equity = column.equity
    drawdown = metrics.max_drawdown_pct(equity, initial_capital)
    ruin = metrics.ruin_index(equity)
    if ruin is not None:  # returns after a zero or negative equity are undefined
        return CurveStats(
            float(equity[-1]),
            column.fees_paid,
            drawdown,
            None,
            None,
            ruin_ts=int(column.ts[ruin]),
            ruin_equity=float(equity[ruin]),
        )
    per_year = _periods_per_year(column.ts)
    return CurveStats(
        equity=float(equity[-1]),
        fees_paid=column.fees_paid,
        max_drawdown_pct=drawdown,
        sharpe=metrics.sharpe_ratio(equity, per_year) if per_year else None,
        sortino=metrics.sortino_ratio(equity, per_year) if per_year else None,
    )


def normalised_curve(request: UserRequest, ts: np.ndarray, equity: np.ndarray) -> pd.DataFrame:
    """Equity as a percentage of the initial capital, starting at 100 one candle before
    the first cycle (the moment the strategy started with its capital)."""
    start = int(ts[0]) - interval_ms(request.trading.interval)
    capital = request.trading.initial_capital
    values = metrics.rebased_to_100(np.r_[capital, equity], capital)
    return pd.DataFrame({"ts": np.r_[start, ts], "value": values})


def _periods_per_year(ts: np.ndarray) -> float | None:
    """Points per year of a (possibly thinned) curve, from its actual time spacing.

    ``None`` below ``MIN_RATIO_POINTS`` points: ratios are not shown that early.
    """
    if len(ts) < MIN_RATIO_POINTS or ts[-1] <= ts[0]:
        return None
    return float(YEAR_MS * (len(ts) - 1) / (ts[-1] - ts[0]))


def trade_net_pnls(store: SqliteStore, strategy_id: str) -> list[float]:
    """Net P&L (after fees, ``metrics.net_pnl``) of each closed trade, in the order closed."""
    return [
        metrics.net_pnl(pnl, fees) for pnl, fees in page_queries.trade_results(store, strategy_id)
    ]


def llm_costs(store: SqliteStore, requests: dict[str, UserRequest]) -> dict[str, float]:
    """Total LLM cost in USD per strategy that uses an LLM and has a known cost."""
    costs = {sid: _llm_cost(store, request, sid) for sid, request in requests.items()}
    return {sid: cost for sid, cost in costs.items() if cost is not None}


def _llm_cost(store: SqliteStore, request: UserRequest, strategy_id: str) -> float | None:
    if request.llm.is_builtin:
        return None  # built-in rules never cost anything
    return store.llm_cost(strategy_id)


def prompt_label(request: UserRequest) -> str:
    """A short name of the strategy's prompt: template id, the custom text's start, or the rule."""
    trading = request.trading
    if trading.custom_prompt and trading.custom_prompt.strip():
        text = " ".join(trading.custom_prompt.split())
        return text if len(text) <= PROMPT_LABEL_CHARS else text[: PROMPT_LABEL_CHARS - 1] + "…"
    if trading.template_id:
        return f"template: {trading.template_id}"
    return "built-in rule" if request.llm.is_builtin else "(no prompt)"


def benchmark(store: SqliteStore, strategy: StrategyRow) -> pd.DataFrame | None:
    """Equal-weight buy-and-hold of the strategy's symbols over its own cycles (start = 100).

    Bought at the close its first cycle saw, valued at the close each later
    cycle saw (the recorded candles, so exactly the prices the strategy
    traded on). ``None`` before two cycles recorded candles. Memoised per new
    equity point.
    """
    key = ("benchmark", *memo.strategy_version(store, strategy.id))
    return memo.remember(key, lambda: _benchmark(store, strategy))


def _benchmark(store: SqliteStore, strategy: StrategyRow) -> pd.DataFrame | None:
    symbols = list(strategy.request.trading.symbols)
    sampled = page_queries.sampled_closes(store, strategy.id, symbols, BENCHMARK_POINTS)
    if len(sampled) < 2:
        return None
    index = metrics.buy_and_hold_index([closes for _, closes in sampled])
    short = ", ".join(s.split("/")[0] for s in symbols)
    return pd.DataFrame(
        {
            "ts": np.array([ts for ts, _ in sampled], dtype=np.int64),
            "value": index,
            "label": f"Buy & hold {short} ({strategy.name})",
        }
    )
