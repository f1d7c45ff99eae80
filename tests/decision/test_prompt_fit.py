from __future__ import annotations

import pytest

from strategy_agent.decision.llm_policy import load_litellm
from strategy_agent.decision.prompt_context import render_series
from strategy_agent.decision.prompt_fit import (
    MAX_TOKEN_RATIO,
    context_window,
    fit_prompt,
    observed_ratio,
    reply_reserve,
)
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import ComposeContext, ModelConfig
from tests.decision.test_llm_policy import make_context

Messages = list[dict[str, str]]


def context_with_distinct_series() -> ComposeContext:
    context = make_context()
    features = []
    for vector in context.features:
        meta = dict(vector.meta or {})
        meta["series"] = {
            "close": [1000.0 + i for i in range(12)],
            "rsi_14": [30.0 + i for i in range(12)],
        }
        features.append(vector.model_copy(update={"meta": meta}))
    return context.model_copy(update={"features": features})


def render(context: ComposeContext) -> Messages:
    return [
        {"role": "system", "content": "system"},
        {"role": "user", "content": render_series(context.features)},
    ]


def count(messages: Messages) -> int:
    return sum(len(m["content"]) for m in messages)


def test_the_oldest_points_go_first_and_the_newest_stay() -> None:
    context = context_with_distinct_series()
    full = count(render(context))
    fitted = fit_prompt(context, render, count, budget=full - 40, describe_limit="test")
    user = fitted.messages[1]["content"]
    assert fitted.estimated_tokens <= full - 40
    assert "1011" in user and "41" in user  # the newest close and RSI
    assert "1000 " not in user and " 30 " not in user  # the oldest are gone
    assert fitted.series_points_dropped > 0
    assert fitted.series_points_dropped % 4 == 0  # one point of each of the 4 series at a time


def test_nothing_is_trimmed_when_it_fits() -> None:
    context = context_with_distinct_series()
    fitted = fit_prompt(context, render, count, budget=10_000, describe_limit="test")
    assert fitted.messages == render(context) and fitted.series_points_dropped == 0


def test_the_series_can_go_entirely_then_the_sizes_are_given() -> None:
    context = context_with_distinct_series()
    no_series = count(render(context.model_copy(update={"features": []})))
    fitted = fit_prompt(context, render, count, budget=no_series, describe_limit="test")
    assert fitted.messages[1]["content"] == ""
    with pytest.raises(ConfigurationError, match=r"about 6 tokens .* only 5 fit \(window X\)"):
        fit_prompt(context, render, count, budget=5, describe_limit="window X")


def test_the_window_comes_from_the_config_then_litellm() -> None:
    litellm = load_litellm()
    local = ModelConfig(provider="openai", model_id="my-local", context_window=4096)
    assert context_window(local, litellm, "openai/my-local") == 4096
    unknown = ModelConfig(provider="openai", model_id="my-local")
    assert context_window(unknown, litellm, "openai/my-local") is None
    known = ModelConfig(provider="openai", model_id="gpt-4o-mini")
    assert context_window(known, litellm, "openai/gpt-4o-mini") == 128_000


def test_reply_reserve_and_observed_ratio() -> None:
    assert reply_reserve(ModelConfig(provider="openai", model_id="m", max_tokens=300), 4096) == 300
    assert reply_reserve(ModelConfig(provider="openai", model_id="m"), 4096) == 512
    assert reply_reserve(ModelConfig(provider="openai", model_id="m"), 128_000) == 1024
    assert observed_ratio(300, 100) == 3.0
    assert observed_ratio(50, 100) == 1.0  # never trusted to shrink below litellm's count
    assert observed_ratio(10_000, 100) == MAX_TOKEN_RATIO
    assert observed_ratio(None, 100) is None and observed_ratio(100, 0) is None
