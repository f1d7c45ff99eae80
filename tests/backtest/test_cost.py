"""The cost estimate of an LLM backtest: calls, tokens, dollars, and how it compares afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.backtest.cost import (
    COMPLETION_TOKENS_OVERHEAD,
    COMPLETION_TOKENS_PER_ITEM,
    compare_estimate,
    cycles_in_window,
    estimate_backtest,
    estimate_config,
    model_prices,
    price_usd,
)
from strategy_agent.factory import open_runtime
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan

DAY_MS = 86_400_000


def llm_request(
    model_id: str = "gpt-4o-mini", symbols: list[str] | None = None, **llm: Any
) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(provider="openai", model_id=model_id, **llm),
        trading=TradingConfig(symbols=symbols or ["BTC/USDT"]),
    )


@pytest.fixture
def counting_llm() -> Any:
    server = FakeLlmServer(auto_reply=rsi_plan, count_usage=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("model_id", "trading"),
    [
        ("fake-gpt", {"symbols": ["BTC/USDT"]}),
        # 4h candles: the RSI rule buys and sells, so positions and closed trades enter the prompt
        ("gpt-4o-mini", {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "interval": "4h"}),
    ],
)
def test_the_estimate_lands_within_15_percent_of_the_tokens_a_run_used(
    db_path: Path, counting_llm: FakeLlmServer, model_id: str, trading: dict[str, Any]
) -> None:
    cycles = 24
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id=model_id,
            api_base=counting_llm.api_base,
            cache=False,
            timeout_s=5,
        ),
        trading=TradingConfig(**trading),
    )
    store = SqliteStore(db_path)
    sid = store.create_strategy(request, now_ms=0)
    runtime = open_runtime(store, sid, api_key=SecretStr("sk-test"))
    for _ in range(cycles):
        assert runtime.step().ok
    actual_tokens, actual_usd = store.llm_usage(sid)
    assert len(counting_llm.chat_requests) == cycles  # one call a cycle: what the estimate counts
    if trading.get("interval") == "4h":
        assert store.load_fills(sid)  # the invested prompts were part of this run

    estimate = estimate_config(request, cycles)
    check = compare_estimate(estimate, actual_tokens, actual_usd)
    assert estimate.calls == cycles
    assert check.within(0.15), check.lines()
    # the counted usage is not the fake's fixed 120/40, so this compares real prompt sizes
    assert actual_tokens > cycles * 500


def test_a_built_in_rule_costs_nothing() -> None:
    estimate = estimate_backtest([UserRequest()], cycles=1_000, samples=3)
    assert (estimate.calls, estimate.tokens, estimate.cost_usd) == (0, 0, 0.0)


def test_calls_are_cycles_times_configs_times_samples_and_prices_are_litellms() -> None:
    one, three = llm_request(), llm_request(symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    estimate = estimate_backtest([one, three, UserRequest()], cycles=100, samples=3)
    assert estimate.calls == 100 * 2 * 3
    first, second, rule = estimate.configs
    assert (first.calls, second.calls, rule.calls) == (300, 300, 0)
    assert second.prompt_tokens_per_call > first.prompt_tokens_per_call + 200  # two more symbols
    assert (
        first.completion_tokens_per_call == COMPLETION_TOKENS_OVERHEAD + COMPLETION_TOKENS_PER_ITEM
    )
    # gpt-4o-mini at litellm's $0.15 / $0.60 per million tokens
    expected = (
        300 * (first.prompt_tokens_per_call * 0.15 + first.completion_tokens_per_call * 0.6) / 1e6
    )
    assert first.cost_usd == pytest.approx(expected)
    assert first.price_source == "litellm"
    assert estimate.cost_usd == pytest.approx(first.cost_usd + second.cost_usd)
    total = estimate.lines()[-1]
    assert "600 LLM calls (100 cycles x 2 LLM configs x 3 samples)" in total


def test_a_longer_prompt_estimates_more_tokens() -> None:
    short = llm_request()
    long = short.model_copy(
        update={"trading": short.trading.model_copy(update={"custom_prompt": "Buy dips. " * 200})}
    )
    assert (
        estimate_config(long, 1).prompt_tokens_per_call
        > estimate_config(short, 1).prompt_tokens_per_call + 300
    )


def test_configured_prices_price_an_unknown_model_and_unknown_stays_unknown() -> None:
    priced = llm_request("my-local-model", input_cost_per_mtok=2.0, output_cost_per_mtok=8.0)
    estimate = estimate_config(priced, cycles=10)
    assert estimate.price_source == "configured"
    assert estimate.cost_usd == pytest.approx(
        10
        * (estimate.prompt_tokens_per_call * 2.0 + estimate.completion_tokens_per_call * 8.0)
        / 1e6
    )
    unknown = estimate_config(llm_request("my-local-model"), cycles=10)
    assert unknown.cost_usd is None and unknown.price_source is None
    assert any("input_cost_per_mtok" in note for note in unknown.notes)
    both = estimate_backtest([priced, llm_request("my-local-model")], cycles=10)
    assert both.cost_usd is None
    assert "dollars unknown" in both.lines()[-1]


def test_configured_prices_win_over_litellms() -> None:
    prices = model_prices(
        ModelConfig(
            provider="openai",
            model_id="gpt-4o-mini",
            input_cost_per_mtok=1.0,
            output_cost_per_mtok=1.0,
        )
    )
    assert prices is not None and prices.source == "configured"
    assert price_usd(ModelConfig(provider="openai", model_id="gpt-4o-mini"), 1_000_000, 0) == (
        pytest.approx(0.15)
    )
    assert price_usd(ModelConfig(), 10**6, 10**6) == 0.0  # a built-in rule


def test_max_tokens_caps_the_completion_and_bounds_a_reasoning_model() -> None:
    capped = estimate_config(llm_request(max_tokens=25), cycles=1)
    assert capped.completion_tokens_per_call == 25
    reasoning = estimate_config(llm_request("o3-mini", max_tokens=4_000), cycles=1)
    assert reasoning.completion_tokens_per_call == 4_000
    assert any("reasons before answering" in note for note in reasoning.notes)
    unbounded = estimate_config(llm_request("o3-mini"), cycles=1)
    assert unbounded.completion_tokens_per_call > 1_000


def test_cycles_in_window_counts_each_candle_once() -> None:
    start = 1_735_689_600_000  # 2025-01-01
    assert cycles_in_window(start, start + DAY_MS, "1h") == 25
    assert cycles_in_window(start, start, "1d") == 1
    with pytest.raises(ValueError, match="before it starts"):
        cycles_in_window(start, start - 1, "1h")


def test_the_comparison_reports_signed_errors() -> None:
    estimate = estimate_config(llm_request(), cycles=10)
    check = compare_estimate(estimate, actual_tokens=round(estimate.tokens / 1.1), actual_usd=None)
    assert check.token_error == pytest.approx(0.1, abs=1e-3)
    assert check.within(0.15) and not check.within(0.05)
    assert "(+10.0 %)" in check.lines()[0]
    assert "actual dollars unknown" in check.lines()[1]
    assert not compare_estimate(estimate, 0, None).within()
