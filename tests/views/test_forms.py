"""The New strategy form as data: defaults round-trip, errors land on their field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strategy_agent.models import UserRequest
from strategy_agent.views import forms


def test_default_values_build_the_embedded_default() -> None:
    outcome = forms.build_request(forms.default_values())
    assert outcome.ok
    assert outcome.request == UserRequest()
    assert outcome.session_key is None


def test_percent_field_is_scaled_to_a_fraction() -> None:
    values = forms.default_values()
    assert values["trading.max_position_pct"] == 40
    values["trading.max_position_pct"] = 25
    outcome = forms.build_request(values)
    assert outcome.request is not None
    assert outcome.request.trading.max_position_pct == 0.25


def test_empty_symbols_and_name_are_reported_on_their_fields() -> None:
    values = forms.default_values()
    values["trading.symbols"] = []
    values["trading.strategy_name"] = ""
    outcome = forms.build_request(values)
    assert outcome.request is None
    assert "at least one" in outcome.errors["trading.symbols"]
    assert "trading.strategy_name" in outcome.errors


def test_short_on_spot_is_reported_on_allow_short() -> None:
    values = forms.default_values()
    values["trading.allow_short"] = True
    outcome = forms.build_request(values)
    assert not outcome.ok
    assert "margin or swap" in outcome.errors["trading.allow_short"]


def test_pasted_key_in_env_field_is_refused() -> None:
    values = forms.default_values()
    values["llm.provider"] = "openai"
    values["llm.model_id"] = "gpt-4o-mini"
    values["llm.api_key_env"] = "sk-abc123-not-a-name"
    values["trading.prompt_choice"] = "balanced_trend"
    outcome = forms.build_request(values)
    assert "NAME of an environment variable" in outcome.errors["llm.api_key_env"]


def test_llm_needs_a_prompt_and_typed_key_stays_out_of_the_request() -> None:
    values = forms.default_values()
    values.update({"llm.provider": "openai", "llm.model_id": "gpt-4o-mini"})
    values["llm.session_key"] = "sk-typed-secret"
    assert "trading.custom_prompt" in forms.build_request(values).errors
    values["trading.custom_prompt"] = "Buy dips on BTC."
    outcome = forms.build_request(values)
    assert outcome.request is not None
    assert outcome.session_key is not None
    assert outcome.session_key.get_secret_value() == "sk-typed-secret"
    assert "sk-typed-secret" not in outcome.request.model_dump_json()


def test_live_mode_needs_the_typed_confirmation() -> None:
    values = forms.default_values()
    values["exchange.trading_mode"] = "live"
    assert "type LIVE" in forms.build_request(values).errors["exchange.confirm_live"]
    values["exchange.confirm_live"] = "LIVE"
    assert "exchange.confirm_live" not in forms.build_request(values).errors


def test_modes_this_build_cannot_run_are_refused_on_their_field() -> None:
    values = forms.default_values()
    values["exchange.trading_mode"] = "testnet"
    outcome = forms.build_request(values)
    assert outcome.request is None
    assert "paper only" in outcome.errors["exchange.trading_mode"]


def test_template_choice_sets_template_id_and_blank_text_becomes_none() -> None:
    values = forms.default_values()
    values["trading.prompt_choice"] = "balanced_trend"
    values["llm.api_base"] = "   "
    outcome = forms.build_request(values)
    assert outcome.request is not None
    assert outcome.request.trading.template_id == "balanced_trend"
    assert outcome.request.llm.api_base is None


def test_values_from_request_round_trip() -> None:
    request = UserRequest.model_validate(
        {
            "exchange": {"market_type": "swap"},
            "trading": {"allow_short": True, "max_leverage": 3, "symbols": ["BTC/USDT"]},
        }
    )
    outcome = forms.build_request(forms.values_from_request(request))
    assert outcome.request == request


PYDANTIC_WORDING = ("Input should", "String should", "Value error", "List should", "Field required")


def _errors(**changes: object) -> dict[str, str]:
    values = forms.default_values()
    values.update({f"trading.{k}" if "." not in k else k: v for k, v in changes.items()})
    outcome = forms.build_request(values)
    assert outcome.request is None  # an invalid field blocks Create
    return outcome.errors


def test_capital_below_zero_blocks_create_and_says_why() -> None:
    message = _errors(initial_capital=-5_000.0)["trading.initial_capital"]
    assert message == "Initial capital must be more than 0 USDT (you typed -5,000 USDT)."


def test_leverage_above_the_limit_blocks_create_and_says_why() -> None:
    values = forms.default_values()
    values["exchange.market_type"] = "swap"
    values["trading.max_leverage"] = 1_000.0
    outcome = forms.build_request(values)
    assert outcome.request is None
    assert outcome.errors == {
        "trading.max_leverage": "Max leverage can be at most 125x (you typed 1,000x)."
    }


def test_a_large_capital_is_saved_exactly_as_typed() -> None:
    values = forms.default_values()
    values["trading.initial_capital"] = 5_000_000_000.0
    outcome = forms.build_request(values)
    assert outcome.request is not None
    assert outcome.request.trading.initial_capital == 5_000_000_000.0


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"strategy_name": ""}, "trading.strategy_name", "Give the strategy a name"),
        ({"strategy_name": "x" * 81}, "trading.strategy_name", "at most 80 characters"),
        ({"symbols": []}, "trading.symbols", "Pick at least one symbol"),
        ({"max_positions": 0}, "trading.max_positions", "Max open positions must be at least 1"),
        ({"max_position_pct": 0.0}, "trading.max_position_pct", "more than 0 % of equity"),
        ({"max_position_pct": 20_000.0}, "trading.max_position_pct", "at most 12,500 % of equity"),
        ({"max_gross_exposure": 0.0}, "trading.max_gross_exposure", "more than 0x equity"),
        ({"max_net_exposure": 200.0}, "trading.max_net_exposure", "at most 125x equity"),
        ({"cooldown_bars": -1}, "trading.cooldown_bars", "at least 0 bars"),
        ({"max_leverage": 3.0}, "trading.max_leverage", "Spot trades without leverage"),
        ({"max_leverage": 0.5}, "trading.max_leverage", "Max leverage must be at least 1x"),
        ({"exchange.fee_bps": -1.0}, "exchange.fee_bps", "Fee must be at least 0 bps"),
        ({"llm.temperature": 3.0}, "llm.temperature", "Temperature can be at most 2"),
    ],
)
def test_every_message_is_in_a_traders_words(
    changes: dict[str, object], field: str, words: str
) -> None:
    errors = _errors(**changes)
    assert words in errors[field]
    assert not any(phrase in message for message in errors.values() for phrase in PYDANTIC_WORDING)


def test_the_message_goes_once_the_field_is_fixed() -> None:
    values = forms.default_values()
    values["trading.initial_capital"] = -5_000.0
    assert "trading.initial_capital" in forms.build_request(values).errors
    values["trading.initial_capital"] = 5_000.0
    outcome = forms.build_request(values)
    assert outcome.errors == {}
    assert outcome.request is not None and outcome.request.trading.initial_capital == 5_000.0


# -- symbols at creation -------------------------------------------------------------------


def test_simulated_symbols_outside_its_list_are_refused_with_a_suggestion() -> None:
    values = forms.default_values()
    values["trading.symbols"] = ["FOO/USDT", "btcusdt", "ETH/USDT"]
    outcome = forms.build_request(values)
    assert outcome.request is None
    message = outcome.errors["trading.symbols"]
    assert "'FOO/USDT' is not a market on the simulated market; did you mean" in message
    assert "'btcusdt' is not a symbol in ccxt's notation" in message
    assert "did you mean 'BTC/USDT'" in message
    assert "ETH/USDT" not in message.replace("e.g. 'BTC/USDT'", "")


def test_a_real_exchange_is_checked_against_its_markets_once_they_are_loaded() -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt_markets"
    markets = json.loads((fixtures / "okx.json").read_text())  # okx's recorded load_markets()
    values = forms.default_values()
    values["exchange.exchange_id"] = "okx"
    values["trading.symbols"] = ["BTC/USDT", "ETH/USDT"]
    assert forms.build_request(values).ok  # markets not loaded: the notation is enough
    assert forms.build_request(values, markets).ok
    values["trading.symbols"] = ["BTC/USDX"]
    outcome = forms.build_request(values, markets)
    assert "'BTC/USDX' is not a market on okx" in outcome.errors["trading.symbols"]
    values["trading.symbols"] = ["BTC/USDT"]
    values["exchange.market_type"] = "swap"
    outcome = forms.build_request(values, markets)
    assert "market type swap trades perpetual swaps" in outcome.errors["trading.symbols"]
    assert "'BTC/USDT:USDT'" in outcome.errors["trading.symbols"]
    values["trading.symbols"] = ["BTC/USDT:USDT"]
    assert forms.build_request(values, markets).ok


def test_an_unknown_exchange_id_is_refused_with_the_closest_ids() -> None:
    values = forms.default_values()
    values["exchange.exchange_id"] = "binanse"
    outcome = forms.build_request(values)
    assert "'binance'" in outcome.errors["exchange.exchange_id"]
