"""Queries of the Leaderboard: strategies side by side per window, curves and benchmarks.

Every figure of a row is ``trading_history.run_metrics.run_metrics`` over the
strategy's equity points, closed trades and window (the formulas are
``trading_history.metrics``', stated in the README): return, CAGR, volatility,
Sharpe, Sortino, drawdown and its duration, Calmar, win rate, profit factor,
expectancy, exposure time, fees and their share of the gross P&L, LLM cost per
trade, and the buy-and-hold of the strategy's own symbols over its own cycles
with its own fee (priced from the candles its cycles recorded: no market is
rebuilt). Curves are normalised to 100 at the initial capital.

Fairness: strategies are grouped by the window they traded
(``leaderboard_windows``: market, interval, symbols, first and last candle),
and ranked only inside their group; missing figures rank last. A run with
fewer than 10 closed trades says "too few trades to judge".

One strategy never breaks the board: a blown-up account (equity at or below
zero) shows its return and drawdown with its annualised figures "n/a", and a
row whose figures cannot be computed at all shows "n/a" with the reason, while
the others render. Reads go through ``trading_history.page_queries`` and are
memoised by the data version (``views.memo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from strategy_agent.decision.prompt_choice import prompt_choice
from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.trading_history import metrics, page_queries
from strategy_agent.trading_history.run_metrics import RunMetrics, Window, run_metrics
from strategy_agent.views import format as fmt
from strategy_agent.views import memo
from strategy_agent.views.leaderboard_windows import MarketWindow, market_window, rank

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore, StrategyRow

CURVE_POINTS = 400
BENCHMARK_POINTS = 400
PROMPT_LABEL_CHARS = 48
REASON_CHARS = 300
UNREADABLE = "Could not be read"

FIGURE_COLUMNS = [
    "Return (%)",
    "Buy & hold (%)",
    "CAGR (%)",
    "Volatility (%)",
    "Sharpe",
    "Sortino",
    "Max drawdown (%)",
    "Drawdown duration",
    "Calmar",
    "Win rate (%)",
    "Profit factor",
    "Expectancy (USDT)",
    "Trades",
    "Exposure (%)",
    "Fees (USDT)",
    "Fees / gross P&L (%)",
    "LLM cost (USD)",
    "Cost per trade (USD)",
    "Equity (USDT)",
    "Cycles",
]
LEADERBOARD_COLUMNS = ["Strategy", "Status", "Note", *FIGURE_COLUMNS, "Model", "Prompt", "id"]
ANNUALISED_COLUMNS = ["CAGR (%)", "Volatility (%)", "Sharpe", "Sortino", "Calmar"]


@dataclass(frozen=True)
class Unavailable:
    """Figures of one row shown as "n/a", and why (a sentence for a caption or tooltip)."""

    columns: list[str]
    reason: str


@dataclass(frozen=True)
class WindowGroup:
    """Strategies that traded the same window (``None``: their config could not be read)."""

    window: MarketWindow | None
    ids: list[str]

    @property
    def label(self) -> str:
        return UNREADABLE if self.window is None else self.window.label

    @property
    def key(self) -> str:
        return "unreadable" if self.window is None else self.window.key


@dataclass
class Leaderboard:
    """The table, each strategy's normalised curve and its own buy-and-hold benchmark.

    ``table`` holds every row, group after group, each ranked by return;
    ``windows`` lists the groups (rank only inside one: ``group_table``).
    ``curves`` and ``benchmarks`` share their keys (``"name (id)"``); frames
    have ``ts`` (epoch ms) and ``value`` (start = 100), benchmarks a ``label``.
    ``unavailable`` maps a strategy id to the figures its row cannot show.
    """

    table: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    benchmarks: dict[str, pd.DataFrame] = field(default_factory=dict)
    unavailable: dict[str, Unavailable] = field(default_factory=dict)
    windows: list[WindowGroup] = field(default_factory=list)

    def group_table(self, group: WindowGroup, by: str = "Return (%)") -> pd.DataFrame:
        """The rows of one window, best first by column ``by`` (missing last), with ``#``."""
        rows = self.table[self.table["id"].isin(group.ids)]
        return rank(rows, by)


@dataclass(frozen=True)
class StrategyFigures:
    """A strategy's ``RunMetrics`` plus when and at what value its account blew up (if it did)."""

    run: RunMetrics
    equity: float | None
    ruin_ts: int | None = None
    ruin_equity: float | None = None


def leaderboard(store: SqliteStore) -> Leaderboard:
    """All strategies, grouped by window, best return first in each (recomputed on new data)."""
    return memo.remember(("leaderboard", *memo.data_version(store)), lambda: _build(store))


def _build(store: SqliteStore) -> Leaderboard:
    board = Leaderboard(table=pd.DataFrame(columns=LEADERBOARD_COLUMNS))
    rows: list[dict[str, Any]] = []
    groups: dict[str, WindowGroup] = {}
    for strategy_id, name, status in page_queries.strategy_choices(store):
        window: MarketWindow | None = None
        try:
            strategy = store.get_strategy(strategy_id)
            window = market_window(strategy.request, page_queries.cycle_span(store, strategy_id))
            rows.append(_strategy_row(store, strategy, board))
        except Exception as error:  # one unreadable strategy never takes the board down
            window = None
            rows.append(_unreadable_row(strategy_id, name, status, error, board))
        group = groups.setdefault(
            "unreadable" if window is None else window.key, WindowGroup(window, [])
        )
        group.ids.append(strategy_id)
    if not rows:
        return board
    board.windows = sorted(groups.values(), key=_group_order)
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    board.table = pd.concat(
        [rank(table[table["id"].isin(g.ids)]).drop(columns="#") for g in board.windows],
        ignore_index=True,
    )
    return board


def _group_order(group: WindowGroup) -> tuple[int, int, int]:
    """Largest groups first, then the most recent window; unreadable and unrun ones last."""
    window = group.window
    last = window.last_ts if window is not None and window.last_ts is not None else None
    return (last is None, -len(group.ids), -(last or 0))


def _strategy_row(store: SqliteStore, strategy: StrategyRow, board: Leaderboard) -> dict[str, Any]:
    """The strategy's row; its curve and benchmark go into ``board``."""
    label = f"{strategy.name} ({strategy.id})"
    points = page_queries.sampled_equity(store, strategy.id, CURVE_POINTS)
    if points:
        ts = np.array([t for t, _ in points], dtype=np.int64)
        equity = np.array([e for _, e in points], dtype=np.float64)
        board.curves[label] = normalised_curve(strategy.request, ts, equity)
    bench = benchmark(store, strategy)
    if bench is not None:
        board.benchmarks[label] = bench
    figures = strategy_figures(store, strategy)
    row = _row(store, strategy, figures)
    if figures.ruin_ts is not None:
        board.unavailable[strategy.id] = Unavailable(
            ANNUALISED_COLUMNS,
            f"CAGR, volatility, Sharpe, Sortino and Calmar n/a: the account is blown (equity "
            f"reached {fmt.money(figures.ruin_equity)} on {fmt.ts(figures.ruin_ts)}, now "
            f"{fmt.money(figures.equity)}), and returns after equity falls to 0 or below "
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
    row.update({"Strategy": name, "Status": status, "Note": UNREADABLE, "id": strategy_id})
    return row


def live_label(request: UserRequest, name: str) -> str:
    """``name``, marked ``LIVE`` when the strategy trades real money."""
    return f"🔴 LIVE · {name}" if request.exchange.trading_mode == "live" else name


def _row(store: SqliteStore, strategy: StrategyRow, figures: StrategyFigures) -> dict[str, Any]:
    request = strategy.request
    run = figures.run
    capital = request.trading.initial_capital
    notes = []
    if figures.ruin_ts is not None:
        notes.append(f"Account blown: equity {fmt.money(figures.equity)}")
    if run.too_few_trades:
        notes.append(f"Too few trades to judge ({run.trades} closed)")
    equity = figures.equity if figures.equity is not None else capital
    return {
        "Strategy": live_label(request, strategy.name),
        "Status": strategy.status,
        "Note": "; ".join(notes) or None,
        "Return (%)": run.net_return_pct,
        "Buy & hold (%)": run.buy_and_hold_return_pct,
        "CAGR (%)": run.cagr_pct,
        "Volatility (%)": run.volatility_pct,
        "Sharpe": run.sharpe,
        "Sortino": run.sortino,
        "Max drawdown (%)": run.max_drawdown_pct,
        "Drawdown duration": run.max_drawdown_duration_ms,
        "Calmar": run.calmar,
        "Win rate (%)": None if run.win_rate is None else run.win_rate * 100.0,
        "Profit factor": run.profit_factor,
        "Expectancy (USDT)": run.expectancy,
        "Trades": run.trades,
        "Exposure (%)": run.exposure_time_pct,
        "Fees (USDT)": run.fees_paid,
        "Fees / gross P&L (%)": run.fee_share_pct,
        "LLM cost (USD)": run.llm_cost_usd,
        "Cost per trade (USD)": run.cost_per_trade_usd,
        "Equity (USDT)": equity,
        "Cycles": store.cycle_count(strategy.id) - store.failed_cycle_count(strategy.id),
        "Model": f"{request.llm.provider}/{request.llm.model_id}",
        "Prompt": prompt_label(request),
        "id": strategy.id,
    }


def strategy_figures(store: SqliteStore, strategy: StrategyRow) -> StrategyFigures:
    """``run_metrics`` of the strategy's whole history (memoised per new equity point)."""
    trading = strategy.request.trading
    config = (trading.initial_capital, trading.interval, tuple(trading.symbols))
    fee = strategy.request.exchange.fee_bps
    key = ("strategy_figures", *config, fee, *memo.strategy_version(store, strategy.id))
    return memo.remember(key, lambda: _strategy_figures(store, strategy))


def _strategy_figures(store: SqliteStore, strategy: StrategyRow) -> StrategyFigures:
    request = strategy.request
    capital = request.trading.initial_capital
    series = page_queries.equity_column(store, strategy.id)
    bar = interval_ms(request.trading.interval)
    if series.ts.size:  # the capital is there one candle before the first cycle
        window = Window(int(series.ts[0]) - bar, int(series.ts[-1]), bar)
    else:
        window = Window(0, 0, bar)
    closes = _closes(store, strategy)
    run = run_metrics(
        series,
        page_queries.trade_results(store, strategy.id),
        window,
        capital,
        llm_cost_usd=_llm_cost(store, request, strategy.id),
        benchmark_closes=[row for _, row in closes] if len(closes) >= 2 else None,
        fee_bps=request.exchange.fee_bps,
    )
    final = float(series.equity[-1]) if series.equity.size else None
    ruin = metrics.ruin_index(series.equity)
    if ruin is None:
        return StrategyFigures(run, final)
    return StrategyFigures(run, final, int(series.ts[ruin]), float(series.equity[ruin]))


def normalised_curve(request: UserRequest, ts: np.ndarray, equity: np.ndarray) -> pd.DataFrame:
    """Equity as a percentage of the initial capital, starting at 100 one candle before
    the first cycle (the moment the strategy started with its capital)."""
    start = int(ts[0]) - interval_ms(request.trading.interval)
    capital = request.trading.initial_capital
    values = metrics.rebased_to_100(np.r_[capital, equity], capital)
    return pd.DataFrame({"ts": np.r_[start, ts], "value": values})


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
    """A short name of the prompt the strategy runs with (``prompt_choice``, the one rule).

    The custom text's start, the template id (``default template <id>`` for an
    LLM strategy without a prompt of its own), or "built-in rule".
    """
    choice = prompt_choice(request.trading, uses_prompt=not request.llm.is_builtin)
    if choice.source == "custom":
        text = " ".join(choice.text.split())
        return text if len(text) <= PROMPT_LABEL_CHARS else text[: PROMPT_LABEL_CHARS - 1] + "…"
    if choice.template_id is not None:
        return choice.source.replace("template ", "template: ", 1)
    return "built-in rule"


def benchmark(store: SqliteStore, strategy: StrategyRow) -> pd.DataFrame | None:
    """Equal-weight buy-and-hold of the strategy's symbols over its own cycles (100 before fees).

    Bought at the close its first cycle saw, valued at the close each later
    cycle saw (the recorded candles, so exactly the prices the strategy
    traded on), with the strategy's ``fee_bps`` charged on entry and on the
    exit at the last close (``metrics.buy_and_hold_index``). ``None`` before two
    cycles recorded candles. Memoised per new equity point.
    """
    closes = _closes(store, strategy)
    if len(closes) < 2:
        return None
    index = metrics.buy_and_hold_index(
        [row for _, row in closes], strategy.request.exchange.fee_bps
    )
    short = ", ".join(s.split("/")[0] for s in strategy.request.trading.symbols)
    return pd.DataFrame(
        {
            "ts": np.array([ts for ts, _ in closes], dtype=np.int64),
            "value": index,
            "label": f"Buy & hold {short} ({strategy.name})",
        }
    )


def _closes(store: SqliteStore, strategy: StrategyRow) -> list[tuple[int, list[float]]]:
    """(cycle ts, close of each symbol) at up to ``BENCHMARK_POINTS`` cycles (memoised)."""
    symbols = list(strategy.request.trading.symbols)
    key = ("closes", tuple(symbols), *memo.strategy_version(store, strategy.id))
    return memo.remember(
        key, lambda: page_queries.sampled_closes(store, strategy.id, symbols, BENCHMARK_POINTS)
    )
