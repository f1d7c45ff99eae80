"""Every figure of one run (a live, paper or backtest strategy) in one typed result.

``run_metrics`` takes the run's equity series, its closed trades and its window
and returns a ``RunMetrics``: the formulas are ``metrics``' (one owner each),
this module only decides what applies. A figure that cannot be computed is
``None`` with a sentence in ``reasons`` (never 0); an account whose equity
reached zero or below gives its return (-100 % or worse) and its drawdown,
and ``None`` with reason "account blown" for every annualised figure.
``compare_samples`` summarises N samples of each config (mean, bootstrap 95 %
interval) and marks configs whose intervals overlap as not distinguishable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from strategy_agent.trading_history import metrics

MIN_TRADES_TO_JUDGE = 10
TOO_FEW_TRADES = "too few trades to judge"
ACCOUNT_BLOWN = "account blown"
MIN_RATIO_RETURNS = 30  # annualised figures over fewer bars are noise
MIN_CAGR_DAYS = 30.0  # compounding a shorter window into a yearly rate gives absurd figures
ONE_SAMPLE = "one sample"
NOT_DISTINGUISHABLE = "not distinguishable"
DISTINGUISHABLE = "distinguishable"
ANNUALISED = ("cagr_pct", "volatility_pct", "sharpe", "sortino", "calmar")


@dataclass(frozen=True)
class EquitySeries:
    """A run's equity points, oldest first, one per bar (cycle).

    ``ts`` epoch ms (int64), ``equity`` quote currency (float64), ``gross_exposure``
    sum of |notional| at each point (float64, same length), ``fees_paid`` the
    cumulative fees at the last point.
    """

    ts: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    gross_exposure: npt.NDArray[np.float64]
    fees_paid: float = 0.0


@dataclass(frozen=True)
class Window:
    """The span a run covers: ``start_ms`` when it held its initial capital (the open of
    its first bar), ``end_ms`` its last point; ``bar_ms`` the bar interval."""

    start_ms: int
    end_ms: int
    bar_ms: int

    @property
    def years(self) -> float:
        return (self.end_ms - self.start_ms) / metrics.YEAR_MS


@dataclass(frozen=True)
class RunMetrics:
    """What one run did. Percent fields end in ``_pct``; money in the quote currency.

    ``reasons`` maps a field left ``None`` to why; ``flags`` says what to keep
    in mind when reading the row ("too few trades to judge", "account blown").
    """

    net_return_pct: float | None
    net_pnl: float | None
    cagr_pct: float | None
    volatility_pct: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown_pct: float | None
    max_drawdown_duration_ms: int | None
    calmar: float | None
    trades: int
    win_rate: float | None  # 0..1
    profit_factor: float | None
    expectancy: float | None
    exposure_time_pct: float | None
    fees_paid: float
    fee_share_pct: float | None
    llm_tokens: int | None
    llm_cost_usd: float | None
    cost_per_trade_usd: float | None
    buy_and_hold_return_pct: float | None
    bars: int
    periods_per_year: float
    risk_free_rate: float
    too_few_trades: bool
    blown: bool
    reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(
            text
            for on, text in ((self.blown, ACCOUNT_BLOWN), (self.too_few_trades, TOO_FEW_TRADES))
            if on
        )


def run_metrics(
    series: EquitySeries,
    trade_results: Sequence[tuple[float | None, float]],
    window: Window,
    initial_capital: float,
    *,
    risk_free_rate: float = 0.0,
    llm_tokens: int | None = None,
    llm_cost_usd: float | None = None,
    benchmark_closes: Sequence[Sequence[float]] | npt.NDArray[np.float64] | None = None,
    fee_bps: float = 0.0,
    min_ratio_returns: int = MIN_RATIO_RETURNS,
    min_cagr_days: float = MIN_CAGR_DAYS,
) -> RunMetrics:
    """Every figure of a run from its equity points, closed trades and window.

    ``trade_results`` are (P&L before fees or None, fees) per closed trade;
    the per-bar returns run from ``initial_capital`` at ``window.start_ms``
    through every point, annualised with ``periods_per_year(window.bar_ms)``;
    ``risk_free_rate`` is annual (0.04 = 4 %). Annualised figures need
    ``min_ratio_returns`` returns; CAGR (and so Calmar) a window of at least
    ``min_cagr_days`` days. ``benchmark_closes`` (one row per bar, one
    column per symbol) gives the equal-weight buy-and-hold return over the same
    bars with the same ``fee_bps`` on entry and exit.
    """
    reasons: dict[str, str] = {}
    per_year = metrics.periods_per_year(window.bar_ms)
    curve = np.r_[float(initial_capital), series.equity]
    pnls = [metrics.net_pnl(pnl, fees) for pnl, fees in trade_results]
    trades = len(pnls)
    final = float(series.equity[-1]) if series.equity.size else None
    blown = metrics.ruin_index(series.equity) is not None
    net = None if final is None else final - initial_capital
    if blown:  # returns after equity reached 0 or below are undefined
        annualised: dict[str, float | None] = dict.fromkeys(ANNUALISED)
        reasons.update(dict.fromkeys(ANNUALISED, ACCOUNT_BLOWN))
    else:
        annualised = _annualised(
            curve, window, per_year, risk_free_rate, (min_ratio_returns, min_cagr_days), reasons
        )
    drawdown = metrics.max_drawdown_pct(series.equity, initial_capital)
    result = RunMetrics(
        net_return_pct=None if final is None else metrics.return_pct(final, initial_capital),
        net_pnl=net,
        cagr_pct=annualised["cagr_pct"],
        volatility_pct=annualised["volatility_pct"],
        sharpe=annualised["sharpe"],
        sortino=annualised["sortino"],
        calmar=annualised["calmar"],
        max_drawdown_pct=drawdown,
        max_drawdown_duration_ms=metrics.max_drawdown_duration_ms(
            series.ts, series.equity, initial_capital, window.start_ms
        )
        if series.equity.size
        else None,
        trades=trades,
        win_rate=metrics.win_rate(pnls),
        profit_factor=metrics.profit_factor(pnls),
        expectancy=metrics.expectancy(pnls),
        exposure_time_pct=metrics.exposure_time_pct(series.gross_exposure),
        fees_paid=series.fees_paid,
        fee_share_pct=None if net is None else metrics.fee_share_pct(series.fees_paid, net),
        llm_tokens=llm_tokens,
        llm_cost_usd=llm_cost_usd,
        cost_per_trade_usd=metrics.cost_per_trade(llm_cost_usd, trades),
        buy_and_hold_return_pct=_buy_and_hold(benchmark_closes, fee_bps),
        bars=int(series.equity.size),
        periods_per_year=per_year,
        risk_free_rate=risk_free_rate,
        too_few_trades=trades < MIN_TRADES_TO_JUDGE,
        blown=blown,
    )
    return replace(result, reasons=_with_defaults(result, reasons))


def _annualised(
    curve: npt.NDArray[np.float64],
    window: Window,
    per_year: float,
    risk_free_rate: float,
    minimums: tuple[int, float],
    reasons: dict[str, str],
) -> dict[str, float | None]:
    """CAGR, volatility, Sharpe, Sortino and Calmar of ``curve`` (capital, then each point).

    ``minimums``: (returns for any of them, days of window for CAGR and Calmar).
    """
    min_returns, min_cagr_days = minimums
    returns = curve.size - 1
    if returns < min_returns:
        why = f"annualised figures need at least {min_returns} bars (this run has {returns})"
        reasons.update(dict.fromkeys(ANNUALISED, why))
        return dict.fromkeys(ANNUALISED)
    cagr = None
    if window.years * 365.25 >= min_cagr_days:
        cagr = metrics.cagr_pct(float(curve[0]), float(curve[-1]), window.years)
    else:
        why = f"a window under {min_cagr_days:g} days is too short to compound into a yearly rate"
        reasons.update(cagr_pct=why, calmar=why)
    return {
        "cagr_pct": cagr,
        "volatility_pct": metrics.annualised_volatility_pct(curve, per_year),
        "sharpe": metrics.sharpe_ratio(curve, per_year, risk_free_rate),
        "sortino": metrics.sortino_ratio(curve, per_year, risk_free_rate),
        "calmar": metrics.calmar_ratio(cagr, metrics.max_drawdown_pct(curve)),
    }


def _buy_and_hold(
    closes: Sequence[Sequence[float]] | npt.NDArray[np.float64] | None, fee_bps: float
) -> float | None:
    if closes is None or len(closes) == 0:
        return None
    index = metrics.buy_and_hold_index(closes, fee_bps)
    return metrics.return_pct(float(index[-1]), 100.0)


_WHY_NONE = {
    "net_return_pct": "no equity point yet",
    "net_pnl": "no equity point yet",
    "max_drawdown_pct": "no equity point yet",
    "max_drawdown_duration_ms": "no equity point yet",
    "cagr_pct": "the window is too short to annualise this return",
    "volatility_pct": "fewer than 2 returns",
    "sharpe": "returns do not vary (zero standard deviation)",
    "sortino": "no return below the target (no downside to measure)",
    "calmar": "no drawdown (or no CAGR) to divide by",
    "win_rate": "no closed trade",
    "profit_factor": "no losing trade (unbounded)",
    "expectancy": "no closed trade",
    "exposure_time_pct": "no equity point yet",
    "fee_share_pct": "no gross profit to take a share of",
    "llm_tokens": "not recorded",
    "llm_cost_usd": "not recorded (built-in rules cost nothing)",
    "cost_per_trade_usd": "no LLM cost or no closed trade",
    "buy_and_hold_return_pct": "no recorded closes",
}


def _with_defaults(result: RunMetrics, reasons: dict[str, str]) -> dict[str, str]:
    """``reasons`` plus the usual reason of every other field left ``None``."""
    missing = {name: why for name, why in _WHY_NONE.items() if getattr(result, name) is None}
    return {**missing, **reasons}


# -- N samples of one config ------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSummary:
    """Mean and bootstrap 95 % interval of one figure over a config's samples.

    ``samples`` counts the values given (``None`` ones left out); ``low``/``high``
    are ``None`` with fewer than 2 values; ``label`` is "one sample",
    "not distinguishable" (its interval overlaps another config's: ``overlaps``)
    or "distinguishable".
    """

    mean: float | None
    low: float | None
    high: float | None
    samples: int
    label: str
    overlaps: tuple[str, ...] = ()


def compare_samples(
    values_by_config: Mapping[str, Sequence[float | None]],
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, SampleSummary]:
    """Per config, the mean and bootstrap 95 % interval (``metrics.bootstrap_ci``) of its values.

    Two configs whose intervals overlap (``low_a <= high_b`` and
    ``low_b <= high_a``) are both marked "not distinguishable", naming each
    other; a config with one value is labelled "one sample" and compared with
    none (no interval). ``None`` values (a figure a sample could not compute)
    are left out.
    """
    intervals: dict[str, tuple[float, float, float] | None] = {}
    counts: dict[str, int] = {}
    for config, raw in values_by_config.items():
        values = [v for v in raw if v is not None]
        counts[config] = len(values)
        intervals[config] = metrics.bootstrap_ci(values, n_resamples, seed) if values else None
    ranged = {c: i for c, i in intervals.items() if i is not None and counts[c] > 1}
    result: dict[str, SampleSummary] = {}
    for config, interval in intervals.items():
        if interval is None or counts[config] < 2:
            mean = None if interval is None else interval[0]
            label = ONE_SAMPLE if counts[config] == 1 else "no sample"
            result[config] = SampleSummary(mean, None, None, counts[config], label)
            continue
        mean, low, high = interval
        overlaps = tuple(
            other
            for other, (_, other_low, other_high) in ranged.items()
            if other != config and low <= other_high and other_low <= high
        )
        label = NOT_DISTINGUISHABLE if overlaps else DISTINGUISHABLE
        result[config] = SampleSummary(mean, low, high, counts[config], label, overlaps)
    return result
