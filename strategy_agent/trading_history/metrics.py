"""Performance metrics over an equity curve, closed trades and samples (pure functions).

The one owner of every formula: curve and risk figures here, trade figures in
``trade_metrics`` (re-exported here), a whole run's figures assembled by
``run_metrics.run_metrics``. Each docstring states its formula; the README's
"Metrics" section lists them all.

Units: returns, drawdowns, volatility and shares are in percent (``12.5`` means
12.5 %) when the name ends in ``_pct``; ratios are plain numbers; money is in
the quote currency; times are epoch ms. Equity values are oldest first. Every
input must be finite; a metric that is undefined for the input returns
``None`` rather than 0, so a page can show "n/a" instead of a misleading number.
A year is 365.25 days (crypto trades every day).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from strategy_agent.trading_history.trade_metrics import cost_per_trade as cost_per_trade
from strategy_agent.trading_history.trade_metrics import expectancy as expectancy
from strategy_agent.trading_history.trade_metrics import fee_share_pct as fee_share_pct
from strategy_agent.trading_history.trade_metrics import finite_array
from strategy_agent.trading_history.trade_metrics import net_pnl as net_pnl
from strategy_agent.trading_history.trade_metrics import profit_factor as profit_factor
from strategy_agent.trading_history.trade_metrics import trade_net_pnl as trade_net_pnl
from strategy_agent.trading_history.trade_metrics import trade_net_pnl_pct as trade_net_pnl_pct
from strategy_agent.trading_history.trade_metrics import trade_net_pnls as trade_net_pnls
from strategy_agent.trading_history.trade_metrics import win_rate as win_rate

FloatArray = npt.NDArray[np.float64]
YEAR_MS = 365.25 * 86_400_000


def _as_array(values: Sequence[float] | FloatArray, what: str) -> FloatArray:
    return finite_array(values, what)


# -- returns ----------------------------------------------------------------------------------


def return_pct(equity: float, initial_capital: float) -> float | None:
    """Net return of ``equity`` over ``initial_capital`` (same currency), in percent.

    ``(equity / initial_capital - 1) x 100``: ``-100`` when the money is gone,
    below ``-100`` when equity went negative (the account lost more than its
    capital). ``None`` when the capital is not positive or a value is not finite.
    """
    if not (math.isfinite(equity) and math.isfinite(initial_capital)) or initial_capital <= 0:
        return None
    return (equity / initial_capital - 1.0) * 100.0


def total_return_pct(
    equity: Sequence[float] | FloatArray, initial: float | None = None
) -> float | None:
    """``return_pct`` of the last value over ``initial`` (default: the first value), in percent.

    ``None`` for an empty curve or a base that is not positive.
    """
    values = _as_array(equity, "equity")
    if values.size == 0:
        return None
    return return_pct(float(values[-1]), float(values[0]) if initial is None else initial)


def cagr_pct(start_value: float, end_value: float, years: float) -> float | None:
    """Compound annual growth rate, in percent: ``((end / start) ** (1 / years) - 1) x 100``.

    ``years`` is the window's length in years of 365.25 days. ``None`` when
    the window is not positive, a value is not positive (a blown account has
    no growth rate to compound) or the figure is too large to represent (a
    huge return over a very short window).
    """
    if not (start_value > 0 and end_value > 0 and years > 0):
        return None
    try:
        return (math.exp(math.log(end_value / start_value) / years) - 1.0) * 100.0
    except OverflowError:
        return None


def period_returns(equity: Sequence[float] | FloatArray) -> FloatArray:
    """Simple returns between consecutive points: ``r[i] = v[i] / v[i-1] - 1``."""
    values = _as_array(equity, "equity")
    if values.size < 2:
        return np.empty(0)
    if np.any(values[:-1] <= 0):
        raise ValueError("equity must stay positive to compute returns")
    return values[1:] / values[:-1] - 1.0


def periods_per_year(bar_ms: float) -> float:
    """Bars in a year of 365.25 days for bars of ``bar_ms`` milliseconds (1h: 8,766)."""
    if not (math.isfinite(bar_ms) and bar_ms > 0):
        raise ValueError(f"bar interval must be a positive number of ms (got {bar_ms})")
    return YEAR_MS / bar_ms


def per_period_rate(annual_rate: float, per_year: float) -> float:
    """An annual rate (0.04 = 4 %) compounded down to one period: ``(1 + R) ** (1 / P) - 1``."""
    return float((1.0 + annual_rate) ** (1.0 / per_year) - 1.0)


# -- risk -------------------------------------------------------------------------------------


def annualised_volatility_pct(
    equity: Sequence[float] | FloatArray, per_year: float
) -> float | None:
    """Standard deviation of the per-period returns, annualised, in percent.

    ``std(r, ddof=1) x sqrt(P) x 100`` with ``P`` periods per year. ``None``
    with fewer than 2 returns.
    """
    returns = period_returns(equity)
    if returns.size < 2:
        return None
    return float(np.std(returns, ddof=1)) * math.sqrt(per_year) * 100.0


def sharpe_ratio(
    equity: Sequence[float] | FloatArray, periods_per_year: float, risk_free_rate: float = 0.0
) -> float | None:
    """Annualised Sharpe ratio of the per-period returns (Sharpe 1966; 1994).

    ``mean(r - rf) / std(r - rf, ddof=1) x sqrt(P)``, with ``P`` periods per
    year and ``rf = per_period_rate(risk_free_rate, P)`` (``risk_free_rate`` is
    annual, 0.04 = 4 %, default 0). ``None`` with fewer than 2 returns or a
    zero standard deviation.
    """
    returns = period_returns(equity)
    if returns.size < 2:
        return None
    excess = returns - per_period_rate(risk_free_rate, periods_per_year)
    std = float(np.std(excess, ddof=1))
    if std == 0.0 or not math.isfinite(std):
        return None
    return float(np.mean(excess)) / std * math.sqrt(periods_per_year)


def sortino_ratio(
    equity: Sequence[float] | FloatArray, periods_per_year: float, risk_free_rate: float = 0.0
) -> float | None:
    """Annualised Sortino ratio, target return = the risk-free rate (Sortino & Price 1994).

    ``mean(r - rf) / DD x sqrt(P)`` where the downside deviation is
    ``DD = sqrt(mean(min(r - rf, 0) ** 2))`` over all returns and ``rf`` is the
    per-period risk-free rate (as in ``sharpe_ratio``). ``None`` with fewer
    than 2 returns or no return below the target.
    """
    returns = period_returns(equity)
    if returns.size < 2:
        return None
    excess = returns - per_period_rate(risk_free_rate, periods_per_year)
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return float(np.mean(excess)) / downside * math.sqrt(periods_per_year)


def drawdown_pct(equity: Sequence[float] | FloatArray, initial: float | None = None) -> FloatArray:
    """Fall from the running peak at each point, in percent of that peak (>= 0).

    ``(peak[t] - v[t]) / peak[t] x 100`` with ``peak[t] = max(initial, v[0..t])``
    (``initial``, when given, counts as a peak before the first point, so a
    fall below the starting capital is a drawdown); one value per point. Above
    100 when equity went negative. NaN where the running peak is not positive
    (no drawdown can be measured from it).
    """
    values = _as_array(equity, "equity")
    if values.size == 0:
        return np.empty(0)
    peaks = np.maximum.accumulate(values)
    if initial is not None:
        peaks = np.maximum(peaks, float(initial))
    drops = np.full(values.size, np.nan)
    positive = peaks > 0
    drops[positive] = (peaks[positive] - values[positive]) / peaks[positive] * 100.0
    return drops


def max_drawdown_pct(
    equity: Sequence[float] | FloatArray, initial: float | None = None
) -> float | None:
    """Largest fall from a running peak, in percent of that peak: ``max(drawdown_pct)`` (>= 0).

    ``None`` for an empty curve; points whose peak is not positive are ignored.
    """
    drops = drawdown_pct(equity, initial)
    if drops.size == 0 or np.all(np.isnan(drops)):
        return None
    return float(np.nanmax(drops))


def max_drawdown_duration_ms(
    ts: Sequence[int] | npt.NDArray[np.int64],
    equity: Sequence[float] | FloatArray,
    initial: float | None = None,
    start_ms: int | None = None,
) -> int | None:
    """Longest time spent below a previous peak, in ms (0 when equity never fell).

    An underwater spell runs from the time of a peak to the first later point
    back at or above it, or to the last point when equity has not recovered.
    ``initial`` at ``start_ms`` (both or neither) counts as the first peak.
    ``None`` for an empty curve.
    """
    values = _as_array(equity, "equity")
    times = np.asarray(ts, dtype=np.int64)
    if times.shape != values.shape:
        raise ValueError("ts and equity must have one value per point")
    if (initial is None) != (start_ms is None):
        raise ValueError("give both initial and start_ms, or neither")
    if initial is not None and start_ms is not None:
        values, times = np.r_[float(initial), values], np.r_[np.int64(start_ms), times]
    if values.size == 0:
        return None
    below = values < np.maximum.accumulate(values)
    positions = np.arange(values.size)
    last_peak = np.maximum.accumulate(np.where(below, 0, positions))
    ends = np.flatnonzero(below[:-1]) + 1  # each point right after an underwater one
    spells = times[ends] - times[last_peak[ends - 1]]
    if below[-1]:
        spells = np.r_[spells, times[-1] - times[last_peak[-1]]]
    return int(spells.max()) if spells.size else 0


def calmar_ratio(cagr: float | None, max_drawdown: float | None) -> float | None:
    """CAGR over the maximum drawdown, both in percent (Young 1991): ``CAGR / MDD``.

    Measured over the run's whole window (Young's original uses 36 months).
    ``None`` when either is unknown or the drawdown is 0.
    """
    if cagr is None or max_drawdown is None or max_drawdown <= 0:
        return None
    return cagr / max_drawdown


def ruin_index(equity: Sequence[float] | FloatArray) -> int | None:
    """Position of the first equity value at or below zero (the account blew up), else None.

    From there on period returns are undefined, so Sharpe and Sortino are too.
    """
    values = _as_array(equity, "equity")
    hits = np.flatnonzero(values <= 0)
    return int(hits[0]) if hits.size else None


# -- exposure ---------------------------------------------------------------------------------


def exposure_pct(gross_exposure: float, equity: float) -> float | None:
    """Gross exposure (sum of |notional|) in percent of equity; ``None`` when equity <= 0.

    A book whose equity is zero or negative has no meaningful exposure ratio:
    show the gross exposure in money instead.
    """
    if not (math.isfinite(gross_exposure) and math.isfinite(equity)) or equity <= 0:
        return None
    return gross_exposure / equity * 100.0


def exposure_time_pct(gross_exposure: Sequence[float] | FloatArray) -> float | None:
    """Share of bars with an open position, in percent: ``count(g > 0) / bars x 100``.

    ``gross_exposure`` is the sum of |notional| at each equity point (one per
    bar). ``None`` for no bar.
    """
    gross = _as_array(gross_exposure, "gross_exposure")
    if gross.size == 0:
        return None
    return float(np.count_nonzero(gross > 0)) / gross.size * 100.0


# -- indexes and benchmarks -------------------------------------------------------------------


def rebased_to_100(values: Sequence[float] | FloatArray, base: float) -> FloatArray:
    """``values`` as an index starting at 100 for ``base``: ``values / base * 100``.

    The curves of the Leaderboard (equity over the initial capital) and the
    benchmark (prices over the buy price). ``base`` must be positive.
    """
    if not (math.isfinite(base) and base > 0):
        raise ValueError(f"base of an index must be a positive number (got {base})")
    return _as_array(values, "values") / base * 100.0


def buy_and_hold_index(
    closes: Sequence[Sequence[float]] | FloatArray, fee_bps: float = 0.0
) -> FloatArray:
    """Equal-weight buy-and-hold of several instruments, as an index of money (100 to start).

    ``closes`` has one row per point in time (oldest first) and one column per
    instrument. 100 is split equally and each part buys at the first row's
    close, paying ``f = fee_bps / 10,000`` of the notional as fee (notional
    ``100 / (1 + f)``, the way the ledger charges a fill); every later row marks
    it to market, and the last row sells, paying the fee again:

        index[t] = mean(closes[t] / closes[0]) x 100 / (1 + f)   for t < last
        index[last] = mean(closes[last] / closes[0]) x 100 x (1 - f) / (1 + f)
    """
    array = np.asarray(closes, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("closes must be a table: one row per time, one column per instrument")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError("closes must be positive finite prices")
    if not (math.isfinite(fee_bps) and fee_bps >= 0):
        raise ValueError(f"fee_bps must be a number >= 0 (got {fee_bps})")
    fee = fee_bps / 10_000.0
    index = (array / array[0]).mean(axis=1) * 100.0 / (1.0 + fee)
    index[-1] *= 1.0 - fee
    return np.asarray(index, dtype=np.float64)


# -- samples ----------------------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float] | FloatArray,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``values`` and a percentile bootstrap interval of that mean (Efron 1979).

    Draws ``n_resamples`` samples of ``len(values)`` values with replacement
    (numpy's PCG64 seeded with ``seed``: the same input gives the same
    interval), takes each resample's mean, and returns ``(mean, low, high)``
    with ``low``/``high`` the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of those means (2.5 % and 97.5 % by default). With one value the
    interval is that value (no spread can be estimated: say "one sample").
    """
    data = _as_array(values, "values")
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if n_resamples < 1 or not 0 < confidence < 1:
        raise ValueError("n_resamples must be >= 1 and confidence between 0 and 1")
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(n_resamples, data.size))
    means = data[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return mean, float(low), float(high)
