from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategy_agent.models import InstrumentRef, TradeHistoryEntry
from strategy_agent.trading_history import metrics, trade_metrics
from strategy_agent.trading_history.metrics import (
    YEAR_MS,
    annualised_volatility_pct,
    bootstrap_ci,
    buy_and_hold_index,
    cagr_pct,
    calmar_ratio,
    cost_per_trade,
    expectancy,
    exposure_time_pct,
    fee_share_pct,
    max_drawdown_duration_ms,
    max_drawdown_pct,
    period_returns,
    periods_per_year,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    total_return_pct,
    trade_net_pnls,
    win_rate,
)
from strategy_agent.trading_history.run_metrics import (
    EquitySeries,
    Window,
    compare_samples,
    run_metrics,
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


# -- the figures of a whole run (run_metrics), hand-computed --------------------------------

QUARTER_MS = 7_889_400_000  # a quarter of a 365.25-day year: 4 bars a year


def _series(
    equity: list[float], gross: list[float] | None = None, fees: float = 0.0
) -> EquitySeries:
    return EquitySeries(
        ts=np.arange(1, len(equity) + 1, dtype=np.int64) * QUARTER_MS,
        equity=np.array(equity, dtype=np.float64),
        gross_exposure=np.array(gross or [0.0] * len(equity), dtype=np.float64),
        fees_paid=fees,
    )


WINDOW = Window(start_ms=0, end_ms=3 * QUARTER_MS, bar_ms=QUARTER_MS)
TRADES = [(10.0, 1.0), (-5.0, 1.0), (None, 0.5), (20.0, 2.0)]  # nets 9, -6, -0.5, 18


def test_run_metrics_hand_computed() -> None:
    # capital 100 -> 110 -> 99 -> 118.8: returns +10 %, -10 %, +20 % over 3 quarters
    result = run_metrics(
        _series([110.0, 99.0, 118.8], gross=[50.0, 0.0, 30.0], fees=4.5),
        TRADES,
        WINDOW,
        initial_capital=100.0,
        llm_tokens=1200,
        llm_cost_usd=0.6,
        benchmark_closes=[[100.0, 10.0], [110.0, 9.0], [120.0, 12.0]],
        fee_bps=10.0,
        min_ratio_returns=2,
    )
    assert result.net_return_pct == pytest.approx(18.8)
    assert result.net_pnl == pytest.approx(18.8)
    assert result.periods_per_year == pytest.approx(4.0)
    assert result.cagr_pct == pytest.approx((1.188 ** (4 / 3) - 1) * 100)  # 0.75 years
    assert result.cagr_pct == pytest.approx(25.82, abs=0.01)
    assert result.volatility_pct == pytest.approx(0.15275252316519466 * 2 * 100)
    assert result.sharpe == pytest.approx(0.4364357804719847 * 2)
    assert result.sortino == pytest.approx((0.2 / 3) / math.sqrt(0.01 / 3) * 2)
    assert result.max_drawdown_pct == pytest.approx(10.0)  # 110 -> 99
    assert result.max_drawdown_duration_ms == 2 * QUARTER_MS  # peak at Q1, back above at Q3
    assert result.calmar == pytest.approx(result.cagr_pct / 10.0)
    assert result.trades == 4
    assert result.win_rate == pytest.approx(0.5)
    assert result.profit_factor == pytest.approx(27.0 / 6.5)
    assert result.expectancy == pytest.approx(20.5 / 4)
    assert result.exposure_time_pct == pytest.approx(200 / 3)
    assert result.fees_paid == 4.5
    assert result.fee_share_pct == pytest.approx(4.5 / 23.3 * 100)  # gross = 18.8 + 4.5
    assert (result.llm_tokens, result.llm_cost_usd) == (1200, 0.6)
    assert result.cost_per_trade_usd == pytest.approx(0.15)
    # equal weight: both symbols end at 1.2x; entry fee 1/(1.001), exit fee 0.999
    assert result.buy_and_hold_return_pct == pytest.approx((1.2 * 0.999 / 1.001 - 1) * 100)
    assert result.too_few_trades and result.flags == ("too few trades to judge",)
    assert not result.blown


def test_run_metrics_risk_free_rate_lowers_sharpe_and_sortino() -> None:
    result = run_metrics(
        _series([110.0, 99.0, 118.8]), [], WINDOW, 100.0, risk_free_rate=0.04, min_ratio_returns=2
    )
    per_bar = 1.04**0.25 - 1  # 4 % a year compounded down to a quarter
    excess = [0.1 - per_bar, -0.1 - per_bar, 0.2 - per_bar]
    mean = sum(excess) / 3
    assert result.sharpe == pytest.approx(mean / 0.15275252316519466 * 2)
    downside = math.sqrt((-0.1 - per_bar) ** 2 / 3)
    assert result.sortino == pytest.approx(mean / downside * 2)
    assert result.risk_free_rate == 0.04


@pytest.mark.parametrize(
    ("equity", "net_return", "drawdown"),
    [([60.0, 20.0, 0.0], -100.0, 100.0), ([60.0, -20.0, -30.0], -130.0, 130.0)],
)
def test_a_blown_account_gives_its_loss_and_no_risk_figures(
    equity: list[float], net_return: float, drawdown: float
) -> None:
    series = _series(equity * 20)  # 60 bars: enough for annualised figures otherwise
    window = Window(0, 60 * QUARTER_MS, QUARTER_MS)
    result = run_metrics(series, TRADES, window, 100.0, llm_cost_usd=1.0)
    assert result.blown and "account blown" in result.flags
    assert result.net_return_pct == pytest.approx(net_return)
    assert result.max_drawdown_pct == pytest.approx(drawdown)
    for name in ("cagr_pct", "volatility_pct", "sharpe", "sortino", "calmar"):
        assert getattr(result, name) is None
        assert result.reasons[name] == "account blown"
    assert result.win_rate == pytest.approx(0.5) and result.cost_per_trade_usd == 0.25


def test_missing_figures_are_none_with_a_reason_never_zero() -> None:
    empty = EquitySeries(np.empty(0, np.int64), np.empty(0), np.empty(0))
    result = run_metrics(empty, [], WINDOW, 100.0)
    assert result.net_return_pct is None and result.reasons["net_return_pct"] == (
        "no equity point yet"
    )
    assert result.win_rate is None and result.reasons["win_rate"] == "no closed trade"
    assert result.bars == 0 and result.max_drawdown_duration_ms is None
    short = run_metrics(_series([101.0, 102.0, 101.5]), [], WINDOW, 100.0)
    assert short.sharpe is None and short.cagr_pct is None
    assert short.reasons["sharpe"] == "annualised figures need at least 30 bars (this run has 3)"
    assert short.net_return_pct == pytest.approx(1.5)
    assert short.reasons["llm_cost_usd"].startswith("not recorded")
    assert (
        "sharpe"
        not in run_metrics(
            _series([110.0, 99.0, 118.8]), [], WINDOW, 100.0, min_ratio_returns=2
        ).reasons
    )


def test_ten_closed_trades_are_enough_to_judge() -> None:
    series = _series([101.0])
    assert run_metrics(series, [(1.0, 0.0)] * 9, WINDOW, 100.0).too_few_trades
    judged = run_metrics(series, [(1.0, 0.0)] * 10, WINDOW, 100.0)
    assert not judged.too_few_trades and judged.flags == ()


# -- formulas one by one --------------------------------------------------------------------


def test_cagr_pct() -> None:
    assert cagr_pct(100.0, 121.0, 2.0) == pytest.approx(10.0)
    assert cagr_pct(100.0, 50.0, 1.0) == pytest.approx(-50.0)
    assert cagr_pct(100.0, 0.0, 1.0) is None  # blown: no growth rate
    assert cagr_pct(100.0, 110.0, 0.0) is None
    assert cagr_pct(1.0, 1e300, 1e-6) is None  # too large to represent


def test_periods_per_year_from_the_bar_interval() -> None:
    assert periods_per_year(3_600_000) == pytest.approx(8766.0)
    assert periods_per_year(86_400_000) == pytest.approx(365.25)
    with pytest.raises(ValueError, match="positive"):
        periods_per_year(0)


def test_annualised_volatility_pct() -> None:
    assert annualised_volatility_pct([100.0, 110.0, 99.0, 118.8], 4) == pytest.approx(
        30.5505, abs=1e-4
    )
    assert annualised_volatility_pct([100.0, 110.0], 4) is None


def test_max_drawdown_duration_ms() -> None:
    # peak at t=0, under water at 1 and 2, back at the peak at 3, under again at 4
    assert max_drawdown_duration_ms([0, 1, 2, 3, 4], [100.0, 90.0, 95.0, 100.0, 80.0]) == 3
    assert max_drawdown_duration_ms([0, 1, 2], [100.0, 110.0, 120.0]) == 0
    assert max_drawdown_duration_ms([0, 5, 7], [100.0, 90.0, 80.0]) == 7  # not recovered
    # the initial capital at start_ms is the first peak: under it from -1 to 1
    assert max_drawdown_duration_ms([0, 1], [150.0, 160.0], initial=200.0, start_ms=-1) == 2
    assert max_drawdown_duration_ms([], []) is None


def test_calmar_ratio() -> None:
    assert calmar_ratio(30.0, 15.0) == pytest.approx(2.0)
    assert calmar_ratio(30.0, 0.0) is None
    assert calmar_ratio(None, 10.0) is None


def test_exposure_time_pct() -> None:
    assert exposure_time_pct([0.0, 10.0, 5.0, 0.0]) == pytest.approx(50.0)
    assert exposure_time_pct([]) is None


def test_expectancy_fee_share_and_cost_per_trade() -> None:
    assert expectancy([9.0, -6.0, -0.5, 18.0]) == pytest.approx(5.125)
    assert expectancy([]) is None
    assert fee_share_pct(10.0, 30.0) == pytest.approx(25.0)  # gross 40, fees 10
    assert fee_share_pct(10.0, -5.0) == pytest.approx(200.0)  # fees turned +5 into -5
    assert fee_share_pct(10.0, -10.0) is None  # no gross profit
    assert cost_per_trade(0.6, 4) == pytest.approx(0.15)
    assert cost_per_trade(0.6, 0) is None and cost_per_trade(None, 3) is None


def test_buy_and_hold_index_charges_the_entry_and_exit_fee() -> None:
    closes = [[100.0], [110.0], [121.0]]
    assert buy_and_hold_index(closes).tolist() == pytest.approx([100.0, 110.0, 121.0])
    charged = buy_and_hold_index(closes, fee_bps=10.0)
    assert charged.tolist() == pytest.approx([100 / 1.001, 110 / 1.001, 121 * 0.999 / 1.001])
    two = buy_and_hold_index([[100.0, 10.0], [150.0, 5.0]], fee_bps=0.0)
    assert two.tolist() == pytest.approx([100.0, 100.0])  # +50 % and -50 %, equal weight
    with pytest.raises(ValueError, match="fee_bps"):
        buy_and_hold_index(closes, fee_bps=-1.0)


def test_trade_formulas_have_one_owner() -> None:
    for name in ("net_pnl", "trade_net_pnl", "win_rate", "profit_factor", "expectancy"):
        assert getattr(metrics, name) is getattr(trade_metrics, name)


# -- N samples: bootstrap interval and distinguishability -----------------------------------


def test_bootstrap_ci_hand_computed_and_deterministic() -> None:
    # two values: resample means are 1, 1.5, 2 with chances 1/4, 1/2, 1/4
    assert bootstrap_ci([1.0, 2.0], n_resamples=4000, seed=1) == pytest.approx((1.5, 1.0, 2.0))
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)
    assert bootstrap_ci([7.0]) == (7.0, 7.0, 7.0)
    values = np.random.default_rng(5).normal(0.0, 1.0, 400)
    mean, low, high = bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) == (mean, low, high)  # same seed, same interval
    assert mean == pytest.approx(values.mean())
    half_width = 1.96 * values.std(ddof=1) / math.sqrt(400)  # the normal approximation
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    assert low < mean < high
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])


def test_compare_samples_marks_overlapping_configs() -> None:
    summary = compare_samples(
        {
            "a": [1.0, 1.1, 0.9],
            "b": [5.0, 5.2, 4.8],
            "c": [1.05, 0.95, 1.0, None],
            "d": [2.0],
        },
        n_resamples=2000,
    )
    assert summary["a"].label == "not distinguishable" and summary["a"].overlaps == ("c",)
    assert summary["c"].overlaps == ("a",) and summary["c"].samples == 3
    assert summary["b"].label == "distinguishable" and summary["b"].mean == pytest.approx(5.0)
    assert summary["b"].low is not None and summary["b"].low <= 5.0 <= summary["b"].high
    one = summary["d"]
    assert (one.label, one.mean, one.low, one.high, one.samples) == (
        "one sample",
        2.0,
        None,
        None,
        1,
    )
    assert compare_samples({"a": [1.0, 1.1, 0.9]}) == compare_samples({"a": [1.0, 1.1, 0.9]})


def test_a_window_under_30_days_has_no_cagr_nor_calmar() -> None:
    hour = 3_600_000
    equity = [100.0 * (1.001 if i % 2 else 0.9995) ** i for i in range(1, 41)]
    series = EquitySeries(np.arange(1, 41, dtype=np.int64) * hour, np.array(equity), np.zeros(40))
    result = run_metrics(series, [], Window(0, 40 * hour, hour), 100.0)
    assert result.cagr_pct is None and result.calmar is None
    why = "a window under 30 days is too short to compound into a yearly rate"
    assert result.reasons["cagr_pct"] == why and result.reasons["calmar"] == why
    assert result.sharpe is not None and result.volatility_pct is not None
    longer = run_metrics(series, [], Window(0, 40 * hour, hour), 100.0, min_cagr_days=1.0)
    assert longer.cagr_pct == pytest.approx(cagr_pct(100.0, equity[-1], 40 * hour / YEAR_MS))


# -- properties ------------------------------------------------------------------------------

money = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(money, max_size=60), st.lists(st.tuples(st.none() | money, money), max_size=15))
def test_run_metrics_never_crashes_and_a_blown_account_has_no_risk_figures(
    equity: list[float], trades: list[tuple[float | None, float]]
) -> None:
    series = EquitySeries(
        np.arange(1, len(equity) + 1, dtype=np.int64) * QUARTER_MS,
        np.array(equity, dtype=np.float64),
        np.abs(np.array(equity, dtype=np.float64)),
        fees_paid=1.0,
    )
    result = run_metrics(series, trades, Window(0, len(equity) * QUARTER_MS, QUARTER_MS), 100.0)
    assert result.blown == any(value <= 0 for value in equity)
    if equity:
        assert result.net_return_pct == pytest.approx((equity[-1] / 100.0 - 1) * 100)
    if result.blown:
        if equity[-1] <= 0:  # the money is gone: -100 % or worse
            assert result.net_return_pct is not None and result.net_return_pct <= -100
        assert all(result.reasons[name] == "account blown" for name in ("sharpe", "cagr_pct"))
        assert result.sharpe is None and result.sortino is None and result.calmar is None
    for name, why in result.reasons.items():
        assert getattr(result, name) is None and why
    assert result.too_few_trades == (len(trades) < 10)


def _underwater_brute_force(ts: list[int], values: list[float]) -> int:
    longest = 0
    for start, peak in enumerate(values):
        if start and peak < max(values[:start]):
            continue  # not a peak
        end = next((j for j in range(start + 1, len(values)) if values[j] >= peak), None)
        if end is None:
            if values[-1] < peak:
                longest = max(longest, ts[-1] - ts[start])
        elif end > start + 1:
            longest = max(longest, ts[end] - ts[start])
    return longest


@given(st.lists(st.integers(1, 9), min_size=1, max_size=30))
def test_max_drawdown_duration_matches_a_brute_force(levels: list[int]) -> None:
    ts = [10 * i for i in range(len(levels))]
    values = [float(v) for v in levels]
    assert max_drawdown_duration_ms(ts, values) == _underwater_brute_force(ts, values)
