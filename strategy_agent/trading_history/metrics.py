"""Performance metrics over an equity curve and closed trades (pure functions).

Units: returns and drawdowns are in percent (``12.5`` means 12.5 %); ratios are
plain numbers. Equity values are in the quote currency, oldest first. Every
input must be finite; a metric that is undefined for the input returns ``None``
rather than 0, so a leaderboard can show "-" instead of a misleading number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from strategy_agent.models import TradeHistoryEntry

FloatArray = npt.NDArray[np.float64]


def _as_array(values: Sequence[float] | FloatArray, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must contain finite numbers only (found NaN or inf)")
    return array


def total_return_pct(
    equity: Sequence[float] | FloatArray, initial: float | None = None
) -> float | None:
    """Return of the last value over ``initial`` (default: the first value), in percent.

    ``None`` for an empty curve or a base that is not positive.
    """
    values = _as_array(equity, "equity")
    if values.size == 0:
        return None
    return return_pct(float(values[-1]), float(values[0]) if initial is None else initial)


def return_pct(equity: float, initial_capital: float) -> float | None:
    """Return of ``equity`` over ``initial_capital`` (same currency), in percent.

    ``-100`` when the money is gone, below ``-100`` when equity went negative
    (the account lost more than its capital). ``None`` when the capital is not
    positive or a value is not finite.
    """
    if not (math.isfinite(equity) and math.isfinite(initial_capital)) or initial_capital <= 0:
        return None
    return (equity / initial_capital - 1.0) * 100.0


def rebased_to_100(values: Sequence[float] | FloatArray, base: float) -> FloatArray:
    """``values`` as an index starting at 100 for ``base``: ``values / base * 100``.

    The curves of the Leaderboard (equity over the initial capital) and the
    benchmark (prices over the buy price). ``base`` must be positive.
    """
    if not (math.isfinite(base) and base > 0):
        raise ValueError(f"base of an index must be a positive number (got {base})")
    return _as_array(values, "values") / base * 100.0


def buy_and_hold_index(closes: Sequence[Sequence[float]] | FloatArray) -> FloatArray:
    """Equal-weight buy-and-hold of several instruments, as an index starting at 100.

    ``closes`` has one row per point in time (oldest first) and one column per
    instrument; the first row is the buy price of each. Each instrument gets the
    same money at the start, so the index is ``mean(closes[t] / closes[0]) * 100``.
    """
    array = np.asarray(closes, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("closes must be a table: one row per time, one column per instrument")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError("closes must be positive finite prices")
    return np.asarray((array / array[0]).mean(axis=1) * 100.0, dtype=np.float64)


def exposure_pct(gross_exposure: float, equity: float) -> float | None:
    """Gross exposure (sum of |notional|) in percent of equity; ``None`` when equity <= 0.

    A book whose equity is zero or negative has no meaningful exposure ratio:
    show the gross exposure in money instead.
    """
    if not (math.isfinite(gross_exposure) and math.isfinite(equity)) or equity <= 0:
        return None
    return gross_exposure / equity * 100.0


def ruin_index(equity: Sequence[float] | FloatArray) -> int | None:
    """Position of the first equity value at or below zero (the account blew up), else None.

    From there on period returns are undefined, so Sharpe and Sortino are too.
    """
    values = _as_array(equity, "equity")
    hits = np.flatnonzero(values <= 0)
    return int(hits[0]) if hits.size else None


def max_drawdown_pct(
    equity: Sequence[float] | FloatArray, initial: float | None = None
) -> float | None:
    """Largest fall from a running peak, in percent of that peak (>= 0).

    ``initial``, when given, counts as the first peak (a fall below the
    starting capital is a drawdown). ``None`` for an empty curve; points whose
    peak is not positive are ignored.
    """
    drops = drawdown_pct(equity, initial)
    if drops.size == 0 or np.all(np.isnan(drops)):
        return None
    return float(np.nanmax(drops))


def drawdown_pct(equity: Sequence[float] | FloatArray, initial: float | None = None) -> FloatArray:
    """Fall from the running peak at each point, in percent of that peak (>= 0).

    ``initial``, when given, counts as a peak before the first point (a fall
    below the starting capital is a drawdown); the result has one value per
    point of ``equity``. Above 100 when equity went negative. NaN where the
    running peak is not positive (no drawdown can be measured from it).
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


def period_returns(equity: Sequence[float] | FloatArray) -> FloatArray:
    """Simple returns between consecutive points: ``v[i] / v[i-1] - 1``."""
    values = _as_array(equity, "equity")
    if values.size < 2:
        return np.empty(0)
    if np.any(values[:-1] <= 0):
        raise ValueError("equity must stay positive to compute returns")
    return values[1:] / values[:-1] - 1.0


def sharpe_ratio(equity: Sequence[float] | FloatArray, periods_per_year: float) -> float | None:
    """Annualised Sharpe ratio of the per-period returns (risk-free rate 0).

    ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``; ``None`` with fewer
    than 2 returns or a zero standard deviation.
    """
    returns = period_returns(equity)
    if returns.size < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if std == 0.0 or not math.isfinite(std):
        return None
    return float(np.mean(returns)) / std * math.sqrt(periods_per_year)


def sortino_ratio(equity: Sequence[float] | FloatArray, periods_per_year: float) -> float | None:
    """Annualised Sortino ratio (target return 0).

    ``mean(r) / downside_deviation * sqrt(periods_per_year)`` where the
    downside deviation is ``sqrt(mean(min(r, 0)**2))`` over all returns.
    ``None`` with fewer than 2 returns or no negative return.
    """
    returns = period_returns(equity)
    if returns.size < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return float(np.mean(returns)) / downside * math.sqrt(periods_per_year)


def net_pnl(realized_pnl: float | None, fees: float) -> float:
    """Net P&L of a closed trade, quote currency: ``realized_pnl - fees``.

    ``realized_pnl`` is before fees (a missing one counts as 0); ``fees`` are
    every entry and exit fee of the trade. THE definition of a trade's result:
    a trade wins when its net P&L is > 0 and loses when it is < 0, everywhere.
    """
    return (realized_pnl or 0.0) - fees


def trade_net_pnl(trade: TradeHistoryEntry) -> float:
    """Net P&L of one closed trade (see ``net_pnl``), quote currency."""
    return net_pnl(trade.realized_pnl, trade.fees)


def trade_net_pnl_pct(net: float, entry_notional: float) -> float | None:
    """A trade's net P&L in percent of its entry notional (qty x contract size x entry price).

    ``None`` when the entry notional is not positive. The ledger stores it as
    ``TradeHistoryEntry.realized_pnl_pct``, so its sign is the sign of ``net``.
    """
    if not entry_notional > 0:
        return None
    return net / entry_notional * 100.0


def trade_net_pnls(trades: Iterable[TradeHistoryEntry]) -> list[float]:
    """Net P&L of each closed trade (``trade_net_pnl``), in order."""
    return [trade_net_pnl(trade) for trade in trades]


def win_rate(net_pnls: Sequence[float] | FloatArray) -> float | None:
    """Share of trades with net P&L > 0 (0..1); ``None`` with no trade."""
    pnls = _as_array(net_pnls, "net_pnls")
    if pnls.size == 0:
        return None
    return float(np.count_nonzero(pnls > 0)) / pnls.size


def profit_factor(net_pnls: Sequence[float] | FloatArray) -> float | None:
    """Gross wins / gross losses (both positive); ``None`` when there is no loss."""
    pnls = _as_array(net_pnls, "net_pnls")
    gross_loss = -float(pnls[pnls < 0].sum())
    if gross_loss == 0.0:
        return None
    return float(pnls[pnls > 0].sum()) / gross_loss
