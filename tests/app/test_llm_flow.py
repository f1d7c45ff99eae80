"""With an LLM (the fake OpenAI-compatible server on 127.0.0.1): test, create, run a cycle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.models import UserRequest
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import open_page, texts
from tests.fakes.fake_llm_server import FakeLlmServer

PLAN = {
    "items": [
        {
            "instrument": "BTC/USDT",
            "action": "buy",
            "target_qty": 0.02,
            "confidence": 0.8,
            "rationale": "fake: trend up",
        }
    ],
    "notes": "fake plan from the test server",
}


@pytest.fixture
def fake_llm() -> Iterator[FakeLlmServer]:
    server = FakeLlmServer(auto_reply=lambda body: json.dumps(PLAN)).start()
    yield server
    server.stop()


def _llm_request(api_base: str) -> UserRequest:
    return UserRequest.model_validate(
        {
            "llm": {"provider": "openai", "model_id": "fake-model", "api_base": api_base},
            "trading": {"strategy_name": "LLM", "symbols": ["BTC/USDT"], "custom_prompt": "Go."},
        }
    )


def test_model_test_button_reaches_the_server(app_db: Path, fake_llm: FakeLlmServer) -> None:
    app = open_page("strategies")
    app.button(key="open_form").click().run()
    app.selectbox(key="form.llm.provider").set_value("openai").run()
    app.text_input(key="form.llm.model_id").set_value("fake-model")
    app.text_input(key="form.llm.api_base").set_value(fake_llm.api_base)
    app.button(key="test_model").click().run()
    assert not app.exception
    assert any("answered in" in s.value for s in app.success)
    assert len(fake_llm.chat_requests) == 1


def test_exchange_test_button_loads_symbols_or_explains(app_db: Path) -> None:
    app = open_page("strategies")
    app.button(key="open_form").click().run()
    app.button(key="test_exch").click().run()
    assert any("simulated market ready" in s.value for s in app.success)
    assert "DOT/USDT" in app.multiselect(key="form.trading.symbols").options
    app.selectbox(key="form.exchange.exchange_id").set_value("binance").run()
    app.button(key="test_exch").click().run()
    # no network in the tests: the form says so and lets the user type symbols
    assert any("could not load binance's markets" in e.value for e in app.error)
    assert any("type the symbols" in e.value for e in app.error)


def test_run_one_cycle_with_an_llm_shows_reply_tokens_and_plan(
    app_db: Path, fake_llm: FakeLlmServer
) -> None:
    with SqliteStore(app_db) as store:
        sid = store.create_strategy(_llm_request(fake_llm.api_base), 1)
    app = open_page("prompt_lab", selected_strategy=sid)
    app.button(key="lab_run").click().run()
    assert not app.exception, [e.message for e in app.exception]
    assert fake_llm.chat_requests, "the cycle must have asked the model"
    page = texts(app)
    assert "fake plan from the test server" in page
    tokens = next(m for m in app.metric if m.label == "Tokens")
    assert tokens.value == "160"  # 120 prompt + 40 completion from the fake server
    plan = next(df.value for df in app.dataframe if "Target qty" in df.value.columns)
    assert list(plan["Symbol"]) == ["BTC/USDT"] and list(plan["Action"]) == ["buy"]
    assert any('"fake: trend up"' in c.value for c in app.code)  # the raw reply
