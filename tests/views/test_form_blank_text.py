"""Text fields of the New strategy form: spaces are refused, never trimmed into something
else. A name or a symbol made only of spaces is no name or symbol; spaces around a value
are pointed out instead of being silently removed (what is saved is what was typed)."""

from __future__ import annotations

from typing import Any

import pytest

from strategy_agent.views import forms


def outcome_of(**changes: Any) -> forms.FormOutcome:
    values = forms.default_values()
    values.update(changes)
    return forms.build_request(values)


@pytest.mark.parametrize("name", ["   ", "\t", " \n "])
def test_a_name_of_spaces_is_no_name(name: str) -> None:
    outcome = outcome_of(**{"trading.strategy_name": name})
    assert outcome.request is None
    assert outcome.errors == {"trading.strategy_name": "Give the strategy a name."}


def test_spaces_around_a_name_are_pointed_out_not_trimmed() -> None:
    outcome = outcome_of(**{"trading.strategy_name": " My trend "})
    assert outcome.request is None
    assert outcome.errors["trading.strategy_name"] == (
        "The strategy name starts or ends with a space: remove it."
    )


def test_a_name_with_inner_spaces_is_saved_as_typed() -> None:
    outcome = outcome_of(**{"trading.strategy_name": "My  BTC trend"})
    assert outcome.request is not None
    assert outcome.request.trading.strategy_name == "My  BTC trend"


def test_a_blank_symbol_among_others_is_refused_as_blank() -> None:
    outcome = outcome_of(**{"trading.symbols": ["BTC/USDT", "  "]})
    assert outcome.request is None
    assert outcome.errors["trading.symbols"] == "One symbol is blank: remove it."


def test_spaces_around_a_symbol_are_pointed_out_not_trimmed() -> None:
    outcome = outcome_of(**{"trading.symbols": ["BTC/USDT", " ETH/USDT"]})
    assert outcome.request is None
    assert outcome.errors["trading.symbols"] == (
        "Symbol ' ETH/USDT' starts or ends with a space: remove it and pick 'ETH/USDT'."
    )


def test_a_model_id_of_spaces_is_refused() -> None:
    outcome = outcome_of(
        **{
            "llm.provider": "openai",
            "llm.model_id": "   ",
            "trading.prompt_choice": "balanced_trend",
        }
    )
    assert outcome.request is None
    assert outcome.errors["llm.model_id"] == "Model id cannot be empty."


def test_an_exchange_of_spaces_is_refused() -> None:
    outcome = outcome_of(**{"exchange.exchange_id": "  "})
    assert outcome.request is None
    assert outcome.errors["exchange.exchange_id"] == "Exchange cannot be empty."


@pytest.mark.parametrize(
    ("field", "typed", "label"),
    [
        ("llm.api_base", " http://127.0.0.1:11434", "API base"),
        ("llm.api_key_env", "OPENAI_API_KEY ", "Key environment variable"),
    ],
)
def test_spaces_around_an_optional_value_are_pointed_out(
    field: str, typed: str, label: str
) -> None:
    outcome = outcome_of(
        **{
            "llm.provider": "openai",
            "llm.model_id": "gpt-4o-mini",
            "trading.prompt_choice": "balanced_trend",
            field: typed,
        }
    )
    assert outcome.request is None
    assert outcome.errors[field] == f"{label} starts or ends with a space: remove it."
