"""Number, time and duration formatting used on every page."""

from __future__ import annotations

import math

import pandas as pd

from strategy_agent.views import format as fmt


def test_missing_values_are_a_dash() -> None:
    for render in (fmt.money, fmt.pct, fmt.qty, fmt.price, fmt.usd, fmt.number, fmt.integer):
        assert render(None) == fmt.DASH
    assert fmt.number(math.nan) == fmt.DASH
    assert fmt.when(pd.NaT) == fmt.DASH and fmt.ts(None) == fmt.DASH


def test_numbers() -> None:
    assert fmt.money(12345.678) == "12,345.68 USDT"
    assert fmt.signed_money(-12) == "-12.00 USDT"
    assert fmt.pct(1.234) == "+1.23 %"
    assert fmt.pct_plain(54.55) == "54.5 %" or fmt.pct_plain(54.55) == "54.6 %"
    assert fmt.ratio_pct(0.5) == "50.0 %"
    assert fmt.qty(0.04850000) == "0.0485" and fmt.qty(12000.0) == "12,000"
    assert fmt.price(65311.781) == "65,311.78" and fmt.price(0.0045123) == "0.0045123"
    assert fmt.usd(0.00123) == "$0.0012"
    assert fmt.signed_number(3) == "+3.00"


def test_times_and_durations() -> None:
    assert fmt.ts(1_735_689_600_000) == "2025-01-01 00:00 UTC"
    assert fmt.when(pd.Timestamp("2025-01-06 14:05", tz="UTC")) == "2025-01-06 14:05"
    assert fmt.duration(45 * 60_000) == "45 min"
    assert fmt.duration(5 * 3_600_000 + 20 * 60_000) == "5 h 20 min"
    assert fmt.duration(3 * 86_400_000 + 4 * 3_600_000) == "3 d 4 h"
