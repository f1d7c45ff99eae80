"""The exchange's snapshot in the prompt: compact, only what the exchange gave, none offline."""

from __future__ import annotations

from strategy_agent.decision.prompt_quotes import render_quotes

NOW = 1_737_331_200_000 + 10 * 3_600_000  # 2025-01-20 10:00 UTC
NEXT = 1_737_331_200_000 + 16 * 3_600_000  # 16:00 the same day

SWAPS = {
    "BTC/USDT:USDT": {
        "last": 101_234.5,
        "bid": 101_234.4,
        "ask": 101_234.6,
        "change_24h_pct": -1.234,
        "mark_price": 101_240.1,
        "funding_rate": 0.0001,
        "next_funding_ts": NEXT,
    },
    "ETH/USDT:USDT": {
        "last": 3_210.55,
        "change_24h_pct": 2.5,
        "mark_price": 3_211.0,
        "funding_rate": -0.00005,
        "next_funding_ts": NEXT,
    },
}


def test_swaps_show_prices_change_mark_and_funding_compactly() -> None:
    text = render_quotes(SWAPS, NOW)
    assert text.splitlines() == [
        "quotes (exchange now):",
        "sym|last|bid|ask|24h%|mark|funding%|next_funding",
        "BTC/USDT:USDT|101234.5|101234.4|101234.6|-1.23|101240.1|+0.01|16:00",
        "ETH/USDT:USDT|3210.55|-|-|+2.5|3211|-0.005|16:00",
    ]


def test_spot_shows_no_swap_columns_and_no_snapshot_shows_nothing() -> None:
    spot = {"BTC/USDT": {"last": 100.0, "bid": 99.99, "ask": 100.01, "change_24h_pct": 0.5}}
    assert render_quotes(spot, NOW).splitlines()[1] == "sym|last|bid|ask|24h%"
    assert render_quotes({}, NOW) == ""


def test_three_swaps_cost_few_tokens() -> None:
    from strategy_agent.decision.llm_policy import load_litellm

    three = {**SWAPS, "SOL/USDT:USDT": SWAPS["ETH/USDT:USDT"]}
    litellm = load_litellm()
    tokens = litellm.token_counter(model="openai/gpt-4o-mini", text=render_quotes(three, NOW))
    assert tokens <= 140  # the table of 3 swaps, ~10 % of the 1,500-token prompt
