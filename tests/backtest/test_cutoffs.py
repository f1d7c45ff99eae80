"""Knowledge leakage: which backtest windows are in-sample for which model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from strategy_agent.backtest.cutoffs import in_sample, training_cutoff
from strategy_agent.models import ModelConfig


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("model_id", "month"),
    [
        ("gpt-4o", "2023-10"),
        ("gpt-4o-mini-2024-07-18", "2023-10"),
        ("openai/gpt-4.1-mini", "2024-06"),
        ("o3", "2024-06"),
        ("o3-mini", "2023-10"),
        ("o4-mini", "2024-06"),
        ("claude-3-5-sonnet-20241022", "2024-04"),
        ("anthropic/claude-3.5-sonnet", "2024-04"),
        ("claude-3-7-sonnet-latest", "2024-11"),
        ("claude-sonnet-4-20250514", "2025-03"),
        ("claude-opus-4-1-20250805", "2025-03"),
        ("gemini-1.5-pro", "2023-11"),
        ("gemini-2.0-flash", "2024-08"),
        ("gemini/gemini-2.5-flash", "2025-01"),
        ("deepseek-chat", "2024-07"),
        ("deepseek-reasoner", "2024-07"),
        ("llama3.1:8b", "2023-12"),
        ("Meta-Llama-3.3-70B-Instruct", "2023-12"),
        ("qwen2.5:7b", "2024-09"),
        ("qwen3:8b", "2025-03"),
    ],
)
def test_known_models_have_their_cutoff_month(model_id: str, month: str) -> None:
    cutoff = training_cutoff(model_id)
    assert cutoff is not None and (cutoff.text, cutoff.source) == (month, "table")


@pytest.mark.parametrize("model_id", ["my-local-model", "llama-30b", "qwen-32b", "smollm2"])
def test_unknown_models_have_no_cutoff(model_id: str) -> None:
    assert training_cutoff(model_id) is None
    assert in_sample(model_id, ms("2020-01-01")) is None


def test_a_window_starting_before_the_cutoff_is_in_sample_with_the_reason() -> None:
    model = ModelConfig(provider="openai", model_id="gpt-4.1")
    assert in_sample(model, ms("2024-03-01")) == (
        "in-sample for this model: its training data runs to 2024-06, after the window starts "
        "(2024-03-01)"
    )
    # the cutoff month itself is in the training data; the next month is not
    assert in_sample(model, ms("2024-06-30T23:00:00")) is not None
    assert in_sample(model, ms("2024-07-01")) is None
    assert in_sample(model, ms("2025-01-01")) is None


def test_the_configured_cutoff_wins_and_can_name_a_day() -> None:
    model = ModelConfig(provider="openai", model_id="gpt-4o", training_cutoff="2025-02-10")
    cutoff = training_cutoff(model)
    assert cutoff is not None and (cutoff.text, cutoff.source) == ("2025-02-10", "config")
    assert cutoff.end_ms == ms("2025-02-11")
    assert in_sample(model, ms("2025-02-10T12:00:00")) is not None
    assert in_sample(model, ms("2025-02-11")) is None
    local = ModelConfig(provider="openai", model_id="my-local", training_cutoff="2024-12")
    assert in_sample(local, ms("2024-12-31")) is not None
    assert in_sample(local, ms("2025-01-01")) is None


def test_a_built_in_rule_is_never_in_sample() -> None:
    assert in_sample(ModelConfig(), ms("2000-01-01")) is None


@pytest.mark.parametrize("bad", ["2024-13", "June 2024", "2024-6", "2024-02-30", "20240601"])
def test_a_malformed_training_cutoff_is_refused_with_the_format(bad: str) -> None:
    with pytest.raises(ValidationError, match="2024-06"):
        ModelConfig(provider="openai", model_id="m", training_cutoff=bad)
