"""The New strategy form as data: defaults round-trip, errors land on their field."""

from __future__ import annotations

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
