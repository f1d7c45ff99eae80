"""Metrics over closed trades and costs (pure functions; ``metrics`` re-exports them).

Units: money in the quote currency, shares as fractions (0..1) unless the name
ends in ``_pct``. A figure undefined for the input is ``None``, never 0. Every
array input must be finite (``finite_array`` refuses NaN and inf).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from strategy_agent.models import TradeHistoryEntry

FloatArray = npt.NDArray[np.float64]


def finite_array(values: Sequence[float] | FloatArray, what: str) -> FloatArray:
    """``values`` as a flat float64 array; ``ValueError`` naming ``what`` on NaN, inf or nesting."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must contain finite numbers only (found NaN or inf)")
    return array


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
    """Share of trades with net P&L > 0 (0..1); ``None`` with no trade.

    ``wins / trades``; a trade at exactly 0 counts as a trade, not a win.
    """
    pnls = finite_array(net_pnls, "net_pnls")
    if pnls.size == 0:
        return None
    return float(np.count_nonzero(pnls > 0)) / pnls.size


def profit_factor(net_pnls: Sequence[float] | FloatArray) -> float | None:
    """Gross wins / gross losses of the trades' net P&L: ``sum(p > 0) / |sum(p < 0)|``.

    ``None`` when there is no losing trade (the ratio is unbounded).
    """
    pnls = finite_array(net_pnls, "net_pnls")
    gross_loss = -float(pnls[pnls < 0].sum())
    if gross_loss == 0.0:
        return None
    return float(pnls[pnls > 0].sum()) / gross_loss


def expectancy(net_pnls: Sequence[float] | FloatArray) -> float | None:
    """Average net P&L per closed trade, quote currency: ``sum(p) / trades``.

    Equal to ``win_rate x average win - loss rate x average loss`` (Tharp's
    expectancy in money). ``None`` with no trade.
    """
    pnls = finite_array(net_pnls, "net_pnls")
    if pnls.size == 0:
        return None
    return float(pnls.mean())


def fee_share_pct(fees_paid: float, net_pnl_total: float) -> float | None:
    """Fees in percent of the gross P&L they were taken from.

    ``fees_paid / (net_pnl_total + fees_paid) * 100``: the gross P&L is what
    the trading made before any fee. 40 means fees ate 40 % of the gross
    profit; above 100, fees turned a gross profit into a net loss. ``None``
    when the gross P&L is not positive (no profit to take a share of).
    """
    gross = net_pnl_total + fees_paid
    if not (np.isfinite(gross) and gross > 0):
        return None
    return fees_paid / gross * 100.0


def cost_per_trade(cost: float | None, trades: int) -> float | None:
    """A cost (e.g. LLM dollars) divided by the closed trades; ``None`` without cost or trade."""
    if cost is None or trades <= 0:
        return None
    return cost / trades
