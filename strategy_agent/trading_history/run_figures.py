"""A strategy's figures as the pages show them, and their stored copy for finished runs.

``strategy_figures`` computes, from a strategy's history, its ``RunMetrics``
(``run_metrics`` over every equity point, every closed trade and the LLM
usage: the metrics are never computed on a sample), its final equity, when
its account blew up (if it did), its successful cycles and their span, and
two bounded series for the curves only (``Curves``): at most ``CURVE_POINTS``
equity points evenly spaced in time and its buy-and-hold index at most
``BENCHMARK_POINTS`` cycles (its return depends on the first and last close,
which are always kept).

A run's history no longer changes once it has ended, so ``finish_run`` stores
these figures with the run (``runs.run_metrics``, JSON; ``store_run_figures``)
and the pages read them with ``stored_figures`` in one query. A stored copy
says at which cycle and for which config (capital, interval, symbols, fee)
it was computed, and is used only while both still match: a copy can never
show figures that differ from the history.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from strategy_agent.models import UserRequest, interval_ms
from strategy_agent.trading_history import metrics, page_queries
from strategy_agent.trading_history.run_metrics import RunMetrics, Window, run_metrics

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

CURVE_POINTS = 400
BENCHMARK_POINTS = 400
FORMAT = 1  # the layout of the stored JSON; another value is ignored (computed again)

Fingerprint = tuple[float, str, tuple[str, ...], float]


@dataclass(frozen=True)
class Curves:
    """Bounded series for drawing only (never for figures), times in epoch ms UTC.

    ``equity_ts``/``equity``: at most ``CURVE_POINTS`` equity points evenly
    spaced in time (quote currency); ``benchmark_ts``/``benchmark``: the
    equal-weight buy-and-hold index (100 to start, ``metrics.buy_and_hold_index``
    with the strategy's fee) at most ``BENCHMARK_POINTS`` cycles, the first and
    last included (empty under two cycles with candles).
    """

    equity_ts: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    benchmark_ts: npt.NDArray[np.int64]
    benchmark: npt.NDArray[np.float64]

    def as_json(self) -> str:
        return json.dumps(
            [
                self.equity_ts.tolist(),
                self.equity.tolist(),
                self.benchmark_ts.tolist(),
                self.benchmark.tolist(),
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Curves:
        equity_ts, equity, bench_ts, bench = json.loads(text)
        return cls(
            np.array(equity_ts, dtype=np.int64),
            np.array(equity, dtype=np.float64),
            np.array(bench_ts, dtype=np.int64),
            np.array(bench, dtype=np.float64),
        )


@dataclass(frozen=True)
class StrategyFigures:
    """What the pages show of one strategy, computed from its history.

    ``run`` every figure (``RunMetrics``); ``equity`` the last equity point
    (quote currency; ``None`` before the first cycle); ``ruin_ts``/``ruin_equity``
    when and at what value equity first reached 0 or below; ``cycles`` the
    successful cycles; ``span`` (first ts, last ts, count) of them, ``None``
    before one; ``last_cycle`` the cycle number it was computed at;
    ``curves`` (``Curves``; a stored copy decodes them on first use, so a page
    that draws few curves reads few). Times in epoch ms UTC.
    """

    run: RunMetrics
    equity: float | None
    ruin_ts: int | None = None
    ruin_equity: float | None = None
    cycles: int = 0
    span: tuple[int, int, int] | None = None
    last_cycle: int = 0
    curves_source: Curves | str | None = None

    @cached_property
    def curves(self) -> Curves:
        """The curves (decoded once from a stored copy)."""
        source = self.curves_source
        if isinstance(source, Curves):
            return source
        if source is None:
            empty_ts, empty = np.empty(0, np.int64), np.empty(0, np.float64)
            return Curves(empty_ts, empty, empty_ts, empty)
        return Curves.from_json(source)


def fingerprint(request: UserRequest) -> Fingerprint:
    """What the figures depend on besides the history: capital, interval, symbols, fee."""
    trading = request.trading
    return (
        float(trading.initial_capital),
        trading.interval,
        tuple(trading.symbols),
        float(request.exchange.fee_bps),
    )


def strategy_figures(store: SqliteStore, strategy_id: str, request: UserRequest) -> StrategyFigures:
    """Every figure of the strategy's whole history (see module doc)."""
    trading = request.trading
    capital = trading.initial_capital
    last_cycle = last_cycle_number(store, strategy_id)
    series = page_queries.equity_column(store, strategy_id)
    bar = interval_ms(trading.interval)
    if series.ts.size:  # the capital is there one candle before the first cycle
        window = Window(int(series.ts[0]) - bar, int(series.ts[-1]), bar)
    else:
        window = Window(0, 0, bar)
    closes = page_queries.sampled_closes(
        store, strategy_id, list(trading.symbols), BENCHMARK_POINTS
    )
    tokens, cost = llm_usage(store, request, strategy_id)
    run = run_metrics(
        series,
        page_queries.trade_results(store, strategy_id),
        window,
        capital,
        llm_tokens=tokens,
        llm_cost_usd=cost,
        benchmark_closes=[row for _, row in closes] if len(closes) >= 2 else None,
        fee_bps=request.exchange.fee_bps,
    )
    points = page_queries.sampled_equity(store, strategy_id, CURVE_POINTS)
    bench = (
        metrics.buy_and_hold_index([row for _, row in closes], request.exchange.fee_bps)
        if len(closes) >= 2
        else np.empty(0)
    )
    final = float(series.equity[-1]) if series.equity.size else None
    ruin = metrics.ruin_index(series.equity)
    curves = Curves(
        np.array([ts for ts, _ in points], dtype=np.int64),
        np.array([equity for _, equity in points], dtype=np.float64),
        np.array([ts for ts, _ in closes][: bench.size], dtype=np.int64),
        np.asarray(bench, dtype=np.float64),
    )
    return StrategyFigures(
        run=run,
        equity=final,
        ruin_ts=None if ruin is None else int(series.ts[ruin]),
        ruin_equity=None if ruin is None else float(series.equity[ruin]),
        cycles=store.cycle_count(strategy_id) - store.failed_cycle_count(strategy_id),
        span=page_queries.cycle_span(store, strategy_id),
        last_cycle=last_cycle,
        curves_source=curves,
    )


def llm_usage(
    store: SqliteStore, request: UserRequest, strategy_id: str
) -> tuple[int | None, float | None]:
    """(tokens, US dollars) the strategy's LLM calls cost; ``None`` for a built-in rule."""
    if request.llm.is_builtin:
        return None, None  # built-in rules never cost anything
    return store.llm_usage(strategy_id)


def last_cycle_number(store: SqliteStore, strategy_id: str) -> int:
    """The strategy's last cycle number (0 before one); one index seek."""
    row = store.db.execute(
        "SELECT MAX(cycle) FROM cycles WHERE strategy_id = ?", [strategy_id]
    ).fetchone()
    return int(row[0] or 0)


# -- the stored copy ------------------------------------------------------------------------------


def figures_json(figures: StrategyFigures, request: UserRequest) -> str:
    """``figures`` as the JSON ``runs.run_metrics`` holds (floats round-trip exactly; the
    curves as one JSON string inside, decoded only when drawn)."""
    payload = {
        "format": FORMAT,
        "last_cycle": figures.last_cycle,
        "fingerprint": list(fingerprint(request)),
        "metrics": dataclasses.asdict(figures.run),
        "equity": figures.equity,
        "ruin_ts": figures.ruin_ts,
        "ruin_equity": figures.ruin_equity,
        "cycles": figures.cycles,
        "span": None if figures.span is None else list(figures.span),
        "curves": figures.curves.as_json(),
    }
    return json.dumps(payload, separators=(",", ":"))


def figures_from_json(text: str) -> tuple[int, Fingerprint, StrategyFigures] | None:
    """(last cycle, fingerprint, figures) of a stored copy; ``None`` if it cannot be read."""
    try:
        raw = json.loads(text)
        if raw.get("format") != FORMAT:
            return None
        capital, interval, symbols, fee = raw["fingerprint"]
        print_ = (float(capital), str(interval), tuple(symbols), float(fee))
        span = raw["span"]
        figures = StrategyFigures(
            run=RunMetrics(**raw["metrics"]),
            equity=raw["equity"],
            ruin_ts=raw["ruin_ts"],
            ruin_equity=raw["ruin_equity"],
            cycles=int(raw["cycles"]),
            span=None if span is None else (int(span[0]), int(span[1]), int(span[2])),
            last_cycle=int(raw["last_cycle"]),
            curves_source=str(raw["curves"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return figures.last_cycle, print_, figures


def store_run_figures(store: SqliteStore, run_id: str) -> StrategyFigures:
    """Compute the figures of a run's strategy and store them with the run; returns them."""
    from strategy_agent.trading_history.runs import get_run

    run = get_run(store, run_id)
    figures = strategy_figures(store, run.strategy_id, run.request)
    text = figures_json(figures, run.request)
    with store.write():
        store.db.execute("UPDATE runs SET run_metrics = ? WHERE id = ?", [text, run_id])
    return figures


def stored_figures(
    store: SqliteStore, requests: dict[str, UserRequest]
) -> dict[str, StrategyFigures]:
    """The stored figures still valid for the given strategies (id -> request), in one query.

    Valid: computed at the strategy's current last cycle and for its current
    config (see module doc); the others are left out (compute them).
    """
    if not requests:
        return {}
    rows = store.db.execute(
        "SELECT r.strategy_id, r.run_metrics, "
        "(SELECT MAX(cycle) FROM cycles c WHERE c.strategy_id = r.strategy_id) "
        "FROM runs r WHERE r.run_metrics IS NOT NULL AND r.status != 'running' "
        "ORDER BY r.created_ts, r.rowid"
    ).fetchall()
    found: dict[str, StrategyFigures] = {}
    for strategy_id, text, last in rows:
        request = requests.get(strategy_id)
        if request is None:
            continue
        read = figures_from_json(text)
        if read is None:
            continue
        cycle, print_, figures = read
        if cycle == int(last or 0) and print_ == fingerprint(request):
            found[strategy_id] = figures
    return found
