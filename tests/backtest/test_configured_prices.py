"""The configured model prices price the compose record's cost, as they price the estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from strategy_agent.backtest.budget import BudgetTracker
from strategy_agent.backtest.cost import price_usd
from strategy_agent.factory import open_runtime
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer

PLAN = json.dumps({"items": [{"instrument": "BTC/USDT", "action": "noop", "target_qty": 0}]})


@pytest.mark.parametrize("model_id", ["fake-unpriced", "gpt-4o-mini"])  # unknown, and litellm's
def test_configured_prices_win_in_the_compose_record_and_agree_with_the_budget(
    db_path: Path, fake_llm: FakeLlmServer, model_id: str
) -> None:
    llm = ModelConfig(
        provider="openai",
        model_id=model_id,
        api_base=fake_llm.api_base,
        cache=False,
        timeout_s=5,
        input_cost_per_mtok=2.0,
        output_cost_per_mtok=8.0,
    )
    fake_llm.reply(PLAN, prompt_tokens=1_000, completion_tokens=250)
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(
            UserRequest(llm=llm, trading=TradingConfig(symbols=["BTC/USDT"])), 0
        )
        assert open_runtime(store, sid, api_key=SecretStr("sk-test")).step().ok
        (compose,) = store.records(sid, kind="compose", limit=1)
        tokens, cost = store.llm_usage(sid)
    expected = (1_000 * 2.0 + 250 * 8.0) / 1e6
    assert compose.payload["cost_usd"] == pytest.approx(expected)
    assert (tokens, cost) == (1_250, pytest.approx(expected))
    assert price_usd(llm, 1_000, 250) == pytest.approx(expected)
    budget = BudgetTracker(budget_usd=1.0)
    budget.add_audit("run", compose.payload, llm)
    assert budget.spent().cost_usd == pytest.approx(expected)
