from __future__ import annotations

import re
from typing import Any

import pytest

from strategy_agent.decision.system_prompt import (
    PlanReply,
    PromptLimits,
    build_system_prompt,
    format_duration,
)
from strategy_agent.errors import ConfigurationError

LIMITS: dict[str, Any] = {
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "market_type": "swap",
    "allow_short": True,
    "max_leverage": 3.0,
    "max_positions": 2,
    "max_position_pct": 0.25,
    "max_position_qty": {"BTC/USDT": 0.75},
    "max_gross_exposure": 2.5,
    "max_net_exposure": 1.5,
    "min_confidence": 0.6,
    "cooldown_ms": 5_400_000,
    "fee_bps": 7.5,
    "slippage_bps": 2.0,
    "qty_steps": {"BTC/USDT": 0.001},  # keys the prompt does not use are ignored
}


def test_every_limit_is_written_as_a_number() -> None:
    prompt = build_system_prompt(LIMITS)
    for expected in [
        "BTC/USDT, ETH/USDT only",
        "swap, long and short",
        "leverage <= 3x",
        "at most 2 open positions",
        "<= 25% of equity",
        "BTC/USDT 0.75",
        "gross (sum of |notional|) <= 2.5x equity",
        "net <= 1.5x equity",
        "confidence below 0.6 are rejected",
        "wait 1h30m",
        "about 9.5 bps (fee 7.5, slippage 2)",
    ]:
        assert expected in prompt, expected


def test_no_placeholders_are_left() -> None:
    prompt = build_system_prompt(LIMITS)
    assert "%s" not in prompt and "%%" not in prompt
    assert not re.search(r"\{[a-z_]+\}", prompt)
    assert "None" not in prompt


def test_role_semantics_schema_and_legend_are_present() -> None:
    prompt = build_system_prompt(LIMITS)
    assert "trading policy" in prompt
    assert "target_qty is the SIGNED position AFTER the trade, in base units" in prompt
    assert "flat: close the position" in prompt and "noop: keep it" in prompt
    assert '{"items":[{"instrument":"BTC/USDT","action":"buy"' in prompt
    assert "digest" in prompt and "max_qty" in prompt


def test_long_only_spot_and_optional_limits() -> None:
    prompt = build_system_prompt({"symbols": ["SOL/USDT"], "market_type": "spot"})
    assert "long only (target_qty >= 0)" in prompt
    assert "cooldown" not in prompt and "confidence below" not in prompt
    assert '"instrument":"SOL/USDT"' in prompt


def test_missing_constraints_still_give_a_usable_prompt() -> None:
    prompt = build_system_prompt(None)
    assert "long only" in prompt and '"instrument":"BTC/USDT"' in prompt


def test_malformed_limits_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="limits are malformed"):
        PromptLimits.from_constraints({"max_positions": "many"})


def test_plan_reply_schema_is_strict_and_small() -> None:
    schema = PlanReply.model_json_schema()
    assert schema["required"] == ["items", "notes"]
    item = schema["$defs"]["PlanReplyItem"]
    assert set(item["required"]) == {
        "instrument",
        "action",
        "target_qty",
        "confidence",
        "rationale",
    }
    assert item["properties"]["action"]["enum"] == ["buy", "sell", "flat", "noop"]


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (45_000, "45s"),
        (60_000, "1m"),
        (5_400_000, "1h30m"),
        (93_600_000, "1d2h"),
        (86_400_000, "1d"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text
