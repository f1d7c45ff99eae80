"""Connection tests of the app's "Test" buttons, against the fake LLM over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from strategy_agent.connectivity import check_exchange_connection, check_model_connection
from strategy_agent.models import ExchangeConfig, ModelConfig
from tests.fakes.fake_exchange import FakeExchange
from tests.fakes.fake_llm_server import FakeLlmServer


def test_builtin_model_needs_no_call() -> None:
    assert check_model_connection(ModelConfig(), None).ok
    bad = check_model_connection(ModelConfig(model_id="moon"), None)
    assert not bad.ok and "ema_crossover" in bad.message


def test_llm_answers(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply("OK")
    config = ModelConfig(provider="openai", model_id="m1", api_base=fake_llm.api_base)
    check = check_model_connection(config, SecretStr("sk-test-123"))
    assert check.ok and "'OK'" in check.message
    assert len(fake_llm.requests) == 1
    assert fake_llm.requests[0].body["max_tokens"] == 16


def test_refused_key_is_explained(fake_llm: FakeLlmServer) -> None:
    fake_llm.error(401, "bad key")
    config = ModelConfig(provider="openai", model_id="m1", api_base=fake_llm.api_base)
    check = check_model_connection(config, SecretStr("sk-wrong-456"))
    assert not check.ok and "refused the API key" in check.message
    assert "sk-wrong-456" not in check.message
    assert len(fake_llm.requests) == 1


def test_missing_key_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    config = ModelConfig(provider="anthropic", model_id="claude", api_key_env="NO_SUCH_KEY_VAR")
    check = check_model_connection(config, None)
    assert not check.ok and "NO_SUCH_KEY_VAR" in check.message


def test_exchange_checks() -> None:
    sim = check_exchange_connection(ExchangeConfig())
    assert sim.ok and "BTC/USDT" in sim.symbols
    unknown = check_exchange_connection(ExchangeConfig(exchange_id="binanse"))
    assert not unknown.ok and "'binance'" in unknown.message
    # no network in the tests: okx cannot be reached, and the form may still take typed symbols
    other = check_exchange_connection(ExchangeConfig(exchange_id="okx"))
    assert not other.ok and "could not load okx's markets" in other.message
    assert "type the symbols" in other.message


def test_a_real_exchange_lists_its_tradable_markets_of_the_market_type(
    fake_exchange: FakeExchange,
) -> None:
    spot = ExchangeConfig(exchange_id="binance", api_url=fake_exchange.base_url)
    check = check_exchange_connection(spot)
    assert check.ok and "binance" in check.message
    assert check.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    swap = check_exchange_connection(spot.model_copy(update={"market_type": "swap"}))
    # the inverse BTC/USD:BTC is listed by the exchange but cannot be traded here
    assert swap.ok and swap.symbols == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
