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
the others render.

Backtest runs sit next to live strategies: a run is ranked only against runs
over the same window and the same data (its ``runs`` row: window and data
sha256, whatever path named the file), its Status is the run's own (done,
stopped or failed, with the reason), and a run in-sample for its model says so
in its note.

Speed: a finished run's figures are read from its ``runs`` row (stored when it
ended, ``trading_history.run_figures``: valid only while its last cycle and
config are unchanged); a live strategy's are computed from its history and
memoised per new equity point (``views.memo``), so each is read once per
change. Curves are bounded samples (fewer points per curve when many are
drawn); the figures never are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from strategy_agent.decision.prompt_choice import prompt_choice
from strategy_agent.models import UserRequest
from strategy_agent.trading_history import metrics, page_queries
from strategy_agent.trading_history.run_figures import (
    BENCHMARK_POINTS,
    CURVE_POINTS,
    StrategyFigures,
    fingerprint,
    stored_figures,
)
from strategy_agent.trading_history.run_figures import strategy_figures as _compute_figures
from strategy_agent.trading_history.runs import RunMark, run_marks
from strategy_agent.views import format as fmt
from strategy_agent.views import memo
from strategy_agent.views.leaderboard_curves import (
    benchmark,
    evenly_spaced,
    index_frame,
    normalised_curve,
)
from strategy_agent.views.leaderboard_windows import (
    MarketWindow,
    RunDataWindow,
    is_backtest,
    market_window,
    rank,
    run_data_window,
    run_status,
)

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore, StrategyRow

__all__ = ["BENCHMARK_POINTS", "CURVE_POINTS", "StrategyFigures", "benchmark", "normalised_curve"]

CURVE_POINT_BUDGET = 24_000  # points of all curves together: fewer per curve when many
MIN_CURVE_POINTS = 60
PROMPT_LABEL_CHARS = 48
REASON_CHARS = 300
UNREADABLE = "Could not be read"
IN_SAMPLE_NOTE = "In-sample for this model"

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

Window = MarketWindow | RunDataWindow


@dataclass(frozen=True)
class Unavailable:
    """Figures of one row shown as "n/a", and why (a sentence for a caption or tooltip)."""

    columns: list[str]
    reason: str


@dataclass(frozen=True)
class WindowGroup:
    """Strategies (or backtest runs) over the same window and data; ``None``: their config
    could not be read."""

    window: Window | None
    ids: list[str]

    @property
    def label(self) -> str:
        return UNREADABLE if self.window is None else self.window.label

    @property
    def key(self) -> str:
        return "unreadable" if self.window is None else self.window.key

    @property
    def backtest(self) -> bool:
        """True for a group of backtest runs (same window and data sha256)."""
        return isinstance(self.window, RunDataWindow)


@dataclass
class Leaderboard:
    """The table, each strategy's normalised curve and its own buy-and-hold benchmark.

    ``table`` holds every row, group after group, each ranked by return;
    ``windows`` lists the groups (rank only inside one: ``group_table``).
    ``curves`` and ``benchmarks`` share their keys (``"name (id)"``); frames
    have ``ts`` (epoch ms) and ``value`` (start = 100), benchmarks a ``label``;
    ``curves_for(ids)`` draws only some strategies (curves are decoded on
    first use). ``unavailable`` maps a strategy id to the figures its row
    cannot show; ``in_sample`` the ids of backtest runs in-sample for their model.
    """

    table: pd.DataFrame
    unavailable: dict[str, Unavailable] = field(default_factory=dict)
    windows: list[WindowGroup] = field(default_factory=list)
    in_sample: set[str] = field(default_factory=set)
    drawn: dict[str, tuple[StrategyRow, StrategyFigures]] = field(default_factory=dict)
    _drawings: dict[tuple[str, ...], Curves] = field(default_factory=dict, repr=False)

    def group_table(self, group: WindowGroup, by: str = "Return (%)") -> pd.DataFrame:
        """The rows of one window, best first by column ``by`` (missing last), with ``#``."""
        rows = self.table[self.table["id"].isin(group.ids)]
        return rank(rows, by)

    def curves_for(self, ids: list[str] | None = None) -> Curves:
        """(curves, benchmarks) of the strategies ``ids`` (all: ``None``), keyed by label."""
        chosen = tuple(self.drawn if ids is None else [i for i in ids if i in self.drawn])
        if chosen not in self._drawings:
            self._drawings[chosen] = _draw([self.drawn[sid] for sid in chosen])
        return self._drawings[chosen]

    @property
    def curves(self) -> dict[str, pd.DataFrame]:
        return self.curves_for()[0]

    @property
    def benchmarks(self) -> dict[str, pd.DataFrame]:
        return self.curves_for()[1]

    def curve_label(self, strategy_id: str) -> str | None:
        """The key of a strategy's curve, ``None`` when it has none."""
        found = self.drawn.get(strategy_id)
        return None if found is None else f"{found[0].name} ({strategy_id})"


Curves = tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]


def leaderboard(store: SqliteStore) -> Leaderboard:
    """All strategies and backtest runs, grouped by window, best return first in each
    (recomputed on new data)."""
    return memo.remember(("leaderboard", *memo.data_version(store)), lambda: _build(store))


def _build(store: SqliteStore) -> Leaderboard:
    board = Leaderboard(table=pd.DataFrame(columns=LEADERBOARD_COLUMNS))
    choices = page_queries.strategy_choices(store)
    if not choices:
        return board
    strategies: dict[str, StrategyRow | Exception] = {}
    for strategy_id, _, _ in choices:
        try:
            strategies[strategy_id] = store.get_strategy(strategy_id)
        except Exception as error:  # one unreadable strategy never takes the board down
            strategies[strategy_id] = error
    readable = {sid: row for sid, row in strategies.items() if not isinstance(row, Exception)}
    stored = stored_figures(store, {sid: row.request for sid, row in readable.items()})
    marks = run_marks(store)
    rows: list[dict[str, Any]] = []
    groups: dict[str, WindowGroup] = {}
    drawn: dict[str, tuple[StrategyRow, StrategyFigures]] = {}
    for strategy_id, name, status in choices:
        window: Window | None = None
        strategy = strategies[strategy_id]
        try:
            if isinstance(strategy, Exception):
                raise strategy
            figures = stored.get(strategy_id) or strategy_figures(store, strategy)
            window = _window_of(strategy.request, figures, marks.get(strategy_id))
            rows.append(_strategy_row(strategy, figures, marks.get(strategy_id), board))
            drawn[strategy_id] = (strategy, figures)
        except Exception as error:  # one unreadable strategy never takes the board down
            window = None
            rows.append(_unreadable_row(strategy_id, name, status, error, board))
        key = "unreadable" if window is None else window.key
        group = groups.setdefault(key, WindowGroup(window, []))
        if isinstance(group.window, RunDataWindow) and isinstance(window, RunDataWindow):
            group = groups[key] = WindowGroup(group.window.joined(window), group.ids)
        group.ids.append(strategy_id)
    board.drawn = drawn
    board.windows = sorted(groups.values(), key=_group_order)
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    board.table = pd.concat(
        [rank(table[table["id"].isin(g.ids)]).drop(columns="#") for g in board.windows],
        ignore_index=True,
    )
    return board


def _window_of(request: UserRequest, figures: StrategyFigures, mark: RunMark | None) -> Window:
    """A backtest run's window and data (its ``runs`` row), else the span it traded."""
    if is_backtest(mark):
        return run_data_window(mark, request.trading.interval, figures.span)
    return market_window(request, figures.span)


def _group_order(group: WindowGroup) -> tuple[int, int, int]:
    """Largest groups first, then the most recent window; unreadable and unrun ones last."""
    window = group.window
    last = window.last_ts if window is not None and window.last_ts is not None else None
    return (last is None, -len(group.ids), -(last or 0))


def _strategy_row(
    strategy: StrategyRow, figures: StrategyFigures, mark: RunMark | None, board: Leaderboard
) -> dict[str, Any]:
    """The strategy's row; a blown account's "n/a" columns and an in-sample mark go into
    ``board``."""
    row = _row(strategy, figures, mark)
    if mark is not None and mark.in_sample:
        board.in_sample.add(strategy.id)
    if figures.ruin_ts is not None:
        board.unavailable[strategy.id] = Unavailable(
            ANNUALISED_COLUMNS,
            f"CAGR, volatility, Sharpe, Sortino and Calmar n/a: the account is blown (equity "
            f"reached {fmt.money(figures.ruin_equity)} on {fmt.ts(figures.ruin_ts)}, now "
            f"{fmt.money(figures.equity)}), and returns after equity falls to 0 or below "
            f"are undefined.",
        )
    return row


def _draw(drawn: list[tuple[StrategyRow, StrategyFigures]]) -> Curves:
    """Normalised curves and buy-and-hold lines, fewer points each when many are drawn
    (``CURVE_POINT_BUDGET``; first and last points always kept)."""
    curves: dict[str, pd.DataFrame] = {}
    benchmarks: dict[str, pd.DataFrame] = {}
    points = max(MIN_CURVE_POINTS, min(CURVE_POINTS, CURVE_POINT_BUDGET // max(1, len(drawn))))
    for strategy, figures in drawn:
        label = f"{strategy.name} ({strategy.id})"
        series = figures.curves
        if series.equity_ts.size:
            keep = evenly_spaced(series.equity_ts.size, points)
            curves[label] = normalised_curve(
                strategy.request, series.equity_ts[keep], series.equity[keep]
            )
        keep = evenly_spaced(series.benchmark_ts.size, points)
        bench = index_frame(
            strategy.name, strategy.request, series.benchmark_ts[keep], series.benchmark[keep]
        )
        if bench is not None:
            benchmarks[label] = bench
    return curves, benchmarks


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


def _row(strategy: StrategyRow, figures: StrategyFigures, mark: RunMark | None) -> dict[str, Any]:
    request = strategy.request
    run = figures.run
    capital = request.trading.initial_capital
    notes = []
    if mark is not None and mark.in_sample:
        notes.append(IN_SAMPLE_NOTE)
    if figures.ruin_ts is not None:
        notes.append(f"Account blown: equity {fmt.money(figures.equity)}")
    if run.too_few_trades:
        notes.append(f"Too few trades to judge ({run.trades} closed)")
    equity = figures.equity if figures.equity is not None else capital
    return {
        "Strategy": live_label(request, strategy.name),
        "Status": run_status(mark) if is_backtest(mark) else strategy.status,
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
        "Cycles": figures.cycles,
        "Model": f"{request.llm.provider}/{request.llm.model_id}",
        "Prompt": prompt_label(request),
        "id": strategy.id,
    }


def strategy_figures(store: SqliteStore, strategy: StrategyRow) -> StrategyFigures:
    """``run_figures.strategy_figures`` of the strategy's whole history, memoised per new
    equity point (and per config: capital, interval, symbols, fee)."""
    key = (
        "strategy_figures",
        *fingerprint(strategy.request),
        *memo.strategy_version(store, strategy.id),
    )
    return memo.remember(key, lambda: _compute_figures(store, strategy.id, strategy.request))


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
