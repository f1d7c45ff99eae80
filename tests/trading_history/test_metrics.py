from __future__ import annotations

import math

import numpy as np
import pytest

from strategy_agent.models import InstrumentRef, TradeHistoryEntry
from strategy_agent.trading_history.metrics import (
    max_drawdown_pct,
    period_returns,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    total_return_pct,
    trade_net_pnls,
    win_rate,
)


def test_total_return_pct() -> None:
    assert total_return_pct([100.0, 90.0, 125.0]) == pytest.approx(25.0)
    assert total_return_pct([100.0, 90.0], initial=80.0) == pytest.approx(12.5)
    assert total_return_pct(np.array([50.0])) == 0.0
    assert total_return_pct([]) is None
    assert total_return_pct([0.0, 1.0]) is None


def test_max_drawdown_pct() -> None:
    # peaks 120 then 150; falls 120 -> 90 = 25 %, 150 -> 135 = 10 %
    assert max_drawdown_pct([100.0, 120.0, 90.0, 150.0, 135.0]) == pytest.approx(25.0)
    assert max_drawdown_pct([100.0, 110.0, 120.0]) == 0.0
    # the initial capital is the first peak: 200 -> 150 = 25 %
    assert max_drawdown_pct([150.0, 160.0], initial=200.0) == pytest.approx(25.0)
    assert max_drawdown_pct([]) is None


def test_period_returns() -> None:
    returns = period_returns([100.0, 110.0, 99.0])
    assert returns.tolist() == pytest.approx([0.1, -0.1])
    assert period_returns([100.0]).size == 0
    with pytest.raises(ValueError, match="positive"):
        period_returns([100.0, 0.0, 10.0])


def test_sharpe_ratio_hand_computed() -> None:
    # returns +10 %, -10 %, +20 %: mean 0.0666..., sample std 0.152752...
    equity = [100.0, 110.0, 99.0, 118.8]
    mean = (0.1 - 0.1 + 0.2) / 3
    std = math.sqrt(((0.1 - mean) ** 2 + (-0.1 - mean) ** 2 + (0.2 - mean) ** 2) / 2)
    assert std == pytest.approx(0.15275252316519466)
    assert sharpe_ratio(equity, periods_per_year=1) == pytest.approx(mean / std)
    assert sharpe_ratio(equity, periods_per_year=252) == pytest.approx(mean / std * math.sqrt(252))
    assert sharpe_ratio(equity, 1) == pytest.approx(0.4364357804719847)


def test_sortino_ratio_hand_computed() -> None:
    equity = [100.0, 110.0, 99.0, 118.8]
    mean = 0.2 / 3
    downside = math.sqrt(0.01 / 3)  # only -10 % counts, averaged over 3 returns
    assert sortino_ratio(equity, periods_per_year=1) == pytest.approx(mean / downside)
    assert sortino_ratio(equity, periods_per_year=4) == pytest.approx(2 * mean / downside)


def test_ratios_are_none_when_undefined() -> None:
    assert sharpe_ratio([], 365) is None
    assert sharpe_ratio([100.0], 365) is None
    assert sharpe_ratio([100.0, 110.0], 365) is None  # one return: no sample std
    assert sharpe_ratio([100.0, 110.0, 121.0], 365) is None  # constant returns: zero std
    assert sortino_ratio([100.0, 110.0, 132.0], 365) is None  # no negative return
    assert sortino_ratio([100.0, 90.0], 365) is None


def test_win_rate_and_profit_factor() -> None:
    pnls = [10.0, -5.0, 0.0, 20.0, -10.0]
    assert win_rate(pnls) == pytest.approx(2 / 5)
    assert profit_factor(pnls) == pytest.approx(30.0 / 15.0)
    assert win_rate([]) is None
    assert profit_factor([5.0, 0.0]) is None
    assert profit_factor([-1.0]) == 0.0


def test_trade_net_pnls_subtracts_fees() -> None:
    def closed(realized: float | None, fees: float) -> TradeHistoryEntry:
        return TradeHistoryEntry(
            instrument=InstrumentRef(symbol="BTC/USDT"),
            side="buy",
            type="long",
            quantity=1.0,
            realized_pnl=realized,
            fees=fees,
        )

    assert trade_net_pnls([closed(10.0, 1.5), closed(None, 2.0)]) == [8.5, -2.0]


def test_non_finite_input_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        total_return_pct([100.0, float("nan")])
    with pytest.raises(ValueError, match="finite"):
        win_rate([1.0, float("inf")])
