"""Whole cycles with an LLM policy: what the model answers, what the history says.

The fake OpenAI-compatible server answers over real HTTP; each scenario runs a
full coordinator cycle and reads the stored records back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.core import StrategyHalted
from strategy_agent.decision.prompt_context import render_feedback
from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer

KEY = "sk-cycle-test-0b1c2d3e4f"


def plan(*items: dict[str, Any]) -> str:
    return json.dumps({"items": list(items), "notes": "test plan"})


def item(symbol: str, action: str, target: Any, confidence: float = 0.9) -> dict[str, Any]:
    return {
        "instrument": symbol,
        "action": action,
        "target_qty": target,
        "confidence": confidence,
        "rationale": "because",
    }


@pytest.fixture
def runtime(db_path: Path, fake_llm: FakeLlmServer) -> tuple[StrategyRuntime, SqliteStore]:
    store = SqliteStore(db_path)
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="fake-gpt",
            api_base=fake_llm.api_base,
            timeout_s=5,
            cache=False,
        ),
        trading=TradingConfig(symbols=["BTC/USDT", "ETH/USDT"], max_position_pct=0.3),
    )
    sid = store.create_strategy(request, now_ms=0)
    rt = open_runtime(store, sid, api_key=SecretStr(KEY))
    rt.coordinator._composer.policy._sleep = lambda s: None  # type: ignore[attr-defined]
    return rt, store


def compose_record(store: SqliteStore, sid: str) -> dict[str, Any]:
    (record,) = store.records(sid, kind="compose", limit=1)
    return record.payload


def test_valid_plan_trades_within_limits(runtime: Any, fake_llm: FakeLlmServer) -> None:
    rt, store = runtime
    fake_llm.reply(plan(item("BTC/USDT", "buy", 1.0), item("ETH/USDT", "buy", 0.2)))
    report = rt.step()
    assert report.ok
    payload = compose_record(store, rt.strategy_id)
    assert payload["model"] == "openai/fake-gpt" and payload["fallback_used"] is False
    assert payload["prompt_tokens"] == 120 and payload["completion_tokens"] == 40
    by_symbol = {o["symbol"]: o for o in payload["outcomes"]}
    # 1 BTC (~60k USDT) is far above 30 % of 10k equity: clamped, with the reason
    assert by_symbol["BTC/USDT"]["status"] == "clamped"
    assert any(
        "max_position_pct" in r or "% of equity" in r for r in by_symbol["BTC/USDT"]["reasons"]
    )
    for position in rt.ledger.positions.values():
        assert abs(position.quantity * position.mark_price) <= 0.3 * rt.ledger.equity * 1.001


def test_prose_reply_is_repaired_then_falls_back(runtime: Any, fake_llm: FakeLlmServer) -> None:
    rt, store = runtime
    fake_llm.reply("I think the market looks bullish, buy some bitcoin!")
    fake_llm.reply("Still no JSON, sorry.")
    report = rt.step()
    assert report.ok and report.actions == []
    payload = compose_record(store, rt.strategy_id)
    assert payload["fallback_used"] is True
    assert payload["repair_attempted"] is True
    assert "repair attempted" in payload["fallback_reason"]
    assert len(fake_llm.chat_requests) == 2


def test_nan_and_unknown_symbols_rejected_with_reasons(
    runtime: Any, fake_llm: FakeLlmServer
) -> None:
    rt, store = runtime
    fake_llm.reply(
        '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": NaN},'
        ' {"instrument": "DOGE/USDT", "action": "buy", "target_qty": 5}]}'
    )
    report = rt.step()
    assert report.ok and report.executions == []
    outcomes = compose_record(store, rt.strategy_id)["outcomes"]
    assert {o["status"] for o in outcomes} == {"rejected"}
    assert len(outcomes) == 2 and all(o["reasons"] for o in outcomes)


def test_server_error_then_success_is_retried(runtime: Any, fake_llm: FakeLlmServer) -> None:
    rt, store = runtime
    fake_llm.error(500, "overloaded")
    fake_llm.reply(plan(item("ETH/USDT", "buy", 0.1)))
    assert rt.step().ok
    payload = compose_record(store, rt.strategy_id)
    assert payload["retries"] == 1 and payload["fallback_used"] is False


def test_refused_key_halts_and_is_recorded_without_the_key(
    runtime: Any, fake_llm: FakeLlmServer, db_path: Path
) -> None:
    rt, store = runtime
    fake_llm.error(401, "invalid api key")
    with pytest.raises(StrategyHalted, match="refused the API key"):
        rt.step()
    (error,) = store.records(rt.strategy_id, kind="error", limit=1)
    assert "refused the API key" in error.payload["error"]
    assert len(fake_llm.chat_requests) == 1
    store.close()
    for path in db_path.parent.glob(db_path.name + "*"):
        assert KEY.encode() not in path.read_bytes()


def test_unreachable_server_falls_back_and_says_why(db_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    store = SqliteStore(db_path)
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="m",
            api_base=f"http://127.0.0.1:{dead_port}/v1",
            timeout_s=2,
            cache=False,
        )
    )
    sid = store.create_strategy(request, now_ms=0)
    rt = open_runtime(store, sid)
    rt.coordinator._composer.policy._sleep = lambda s: None  # type: ignore[attr-defined]
    first, second = rt.step(), rt.step()
    assert first.ok and second.ok, "the loop keeps running without its LLM"
    assert first.fallback_reason is not None
    assert "could not be reached" in first.fallback_reason
    assert "api_base" in first.fallback_reason
    payload = compose_record(store, sid)
    assert payload["fallback_used"] is True and payload["retries"] == 3


# --- replies as real models write them ------------------------------------------------------


def held(rt: StrategyRuntime, symbol: str) -> float:
    position = rt.ledger.positions.get(symbol)
    return position.quantity if position is not None else 0.0


def test_a_draft_inside_reasoning_is_not_executed(runtime: Any, fake_llm: FakeLlmServer) -> None:
    rt, store = runtime
    draft = plan(item("BTC/USDT", "buy", 0.066))
    fake_llm.reply(
        f"BTC looks strong, so: {draft}\nWait, RSI is overbought; do nothing.\n</think>\n\n"
        + json.dumps({"items": [], "notes": "stay flat"})
    )
    report = rt.step()
    assert report.ok and report.executions == []
    assert held(rt, "BTC/USDT") == 0.0
    payload = compose_record(store, rt.strategy_id)
    assert payload["reasoning_dropped"] is True and "BTC looks strong" in payload["reasoning"]
    assert payload["fallback_used"] is False and payload["repair_attempted"] is False


def test_close_long_closes_the_position(runtime: Any, fake_llm: FakeLlmServer) -> None:
    rt, store = runtime
    fake_llm.reply(plan(item("ETH/USDT", "open_long", 0.2)))
    assert rt.step().ok
    assert held(rt, "ETH/USDT") == pytest.approx(0.2)
    fake_llm.reply(json.dumps({"items": [{"Instrument": "ETHUSDT", "Action": "close_long"}]}))
    report = rt.step()
    assert report.ok and len(report.executions) == 1
    assert held(rt, "ETH/USDT") == 0.0
    (outcome,) = compose_record(store, rt.strategy_id)["outcomes"]
    assert outcome["status"] == "accepted" and outcome["action"] == "flat"


def test_a_plan_in_a_tool_call_trades(runtime: Any, fake_llm: FakeLlmServer) -> None:
    rt, store = runtime
    arguments = plan(item("ETH/USDT", "buy", 0.1))
    fake_llm.tool_call(arguments)
    report = rt.step()
    assert report.ok and len(report.executions) == 1
    assert held(rt, "ETH/USDT") == pytest.approx(0.1)
    payload = compose_record(store, rt.strategy_id)
    assert payload["raw_reply"] == arguments
    assert payload["reply_source"] == "tool_call:submit_plan"
    assert len(fake_llm.chat_requests) == 1


def test_a_json_mode_refusal_trades_on_the_retry(runtime: Any, fake_llm: FakeLlmServer) -> None:
    rt, store = runtime
    fake_llm.json_mode_refusal()
    fake_llm.reply(plan(item("ETH/USDT", "buy", 0.1)))
    fake_llm.reply(plan(item("ETH/USDT", "noop", 0)))
    report = rt.step()
    assert report.ok and len(report.executions) == 1
    assert held(rt, "ETH/USDT") == pytest.approx(0.1)
    first, retry = fake_llm.chat_requests
    assert "response_format" in first.body and "response_format" not in retry.body
    assert compose_record(store, rt.strategy_id)["response_format"].startswith("instructions")
    assert rt.step().ok  # the next cycle does not ask for JSON mode again
    assert len(fake_llm.chat_requests) == 3
    assert "response_format" not in fake_llm.chat_requests[2].body


def test_a_billing_stop_halts_after_at_most_two_requests(
    runtime: Any, fake_llm: FakeLlmServer
) -> None:
    rt, store = runtime
    for _ in range(5):
        fake_llm.insufficient_quota()
    with pytest.raises(StrategyHalted, match="add credit"):
        rt.step()
    assert len(fake_llm.chat_requests) <= 2
    (error,) = store.records(rt.strategy_id, kind="error", limit=1)
    assert "add credit" in error.payload["error"]


def test_a_reply_cut_off_by_max_tokens_is_repaired_never_half_executed(
    runtime: Any, fake_llm: FakeLlmServer
) -> None:
    rt, store = runtime
    cut = plan(item("BTC/USDT", "buy", 0.05))[:-1] + ', "more": "the trend is'
    fake_llm.reply(cut, finish_reason="length")
    fake_llm.reply(cut, finish_reason="length")
    report = rt.step()
    assert report.ok and report.executions == []
    payload = compose_record(store, rt.strategy_id)
    assert payload["fallback_used"] is True and payload["repair_attempted"] is True
    assert "max_tokens" in payload["fallback_reason"]
    assert payload["finish_reason"] == "length"


def test_a_prompt_too_large_for_the_context_window_halts_with_the_sizes(
    db_path: Path, fake_llm: FakeLlmServer
) -> None:
    store = SqliteStore(db_path)
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="local-4k",
            api_base=fake_llm.api_base,
            cache=False,
            context_window=700,
            max_tokens=200,
        ),
        trading=TradingConfig(symbols=["BTC/USDT", "ETH/USDT"]),
    )
    sid = store.create_strategy(request, now_ms=0)
    rt = open_runtime(store, sid)
    with pytest.raises(StrategyHalted, match="context window is 700 tokens"):
        rt.step()
    assert fake_llm.chat_requests == []


# --- the model is told what became of its last plan -----------------------------------------


def user_message(request: Any) -> str:
    """The user message of one chat request, as the fake server received it."""
    messages = request.body["messages"]
    return next(m["content"] for m in messages if m["role"] == "user")


def feedback_section(prompt: str) -> str | None:
    """The ``last plan, not done as asked:`` block of a user message, if any."""
    return next(
        (part for part in prompt.split("\n\n") if part.startswith("last plan, not done as asked")),
        None,
    )


def test_rejections_appear_in_the_next_prompt_with_their_reasons(
    runtime: Any, fake_llm: FakeLlmServer
) -> None:
    rt, store = runtime
    fake_llm.reply(plan(item("BTC/USDT", "liquidate", 0.01), item("ETH/USDT", "buy", 50)))
    assert rt.step().ok
    outcomes = compose_record(store, rt.strategy_id)["outcomes"]
    assert {o["status"] for o in outcomes} == {"rejected", "clamped"}
    assert feedback_section(user_message(fake_llm.chat_requests[0])) is None  # nothing yet
    fake_llm.reply(plan(item("ETH/USDT", "noop", 0)))
    assert rt.step().ok
    section = feedback_section(user_message(fake_llm.chat_requests[1]))
    assert section is not None
    lines = section.splitlines()[1:]
    assert len(lines) == 2, section
    btc = next(line for line in lines if line.startswith("BTC/USDT"))
    assert btc.startswith("BTC/USDT liquidate 0.01 rejected: ")
    assert 'action "liquidate" is not accepted; use buy, sell, flat or noop' in btc
    eth = next(line for line in lines if line.startswith("ETH/USDT"))
    eth_outcome = next(o for o in outcomes if o["symbol"] == "ETH/USDT")
    final = eth_outcome["final_target_qty"]
    assert eth.startswith(f"ETH/USDT buy 50 clamped to {final:.6g}: ")
    assert "max_position_pct" in eth
    assert all(len(line) <= 140 for line in lines)  # compact: reasons cut short
    # all went as asked in cycle 2: cycle 3's prompt has no feedback block
    fake_llm.reply(plan(item("ETH/USDT", "noop", 0)))
    assert rt.step().ok
    assert feedback_section(user_message(fake_llm.chat_requests[2])) is None


def test_an_unusable_reply_is_told_but_an_outage_is_not(
    runtime: Any, fake_llm: FakeLlmServer
) -> None:
    rt, _ = runtime
    fake_llm.reply("I think the market looks bullish, buy some bitcoin!")
    fake_llm.reply("Still no JSON, sorry.")
    assert rt.step().fallback_reason is not None
    fake_llm.error(503, "down")
    fake_llm.error(503, "down")
    fake_llm.error(503, "down")
    fake_llm.error(503, "down")
    third = rt.step()  # the model gets cycle 1's news, then the server is gone
    assert third.fallback_reason is not None
    section = feedback_section(user_message(fake_llm.chat_requests[2]))
    assert section is not None and section.splitlines()[1].startswith("reply: ")
    assert "gave no usable plan" in section
    fake_llm.reply(plan(item("ETH/USDT", "noop", 0)))
    assert rt.step().ok
    assert feedback_section(user_message(fake_llm.chat_requests[-1])) is None


def test_a_resumed_strategy_tells_the_same_feedback(
    runtime: Any, fake_llm: FakeLlmServer, db_path: Path
) -> None:
    rt, _ = runtime
    fake_llm.reply("Let me think... buy BTC.")  # no JSON: a repair round
    fake_llm.reply(plan(item("BTC/USDT", "liquidate", 0.01), item("ETH/USDT", "buy", 0.1)))
    assert rt.step().ok
    assert len(fake_llm.chat_requests) == 2
    in_process = render_feedback(rt.coordinator._previous_feedback())
    assert in_process.startswith("last plan, not done as asked:\nreply: ")
    assert "BTC/USDT liquidate 0.01 rejected: " in in_process
    # a restart: a new runtime built from the database only
    resumed = open_runtime(SqliteStore(db_path), rt.strategy_id, api_key=SecretStr(KEY))
    resumed.coordinator._composer.policy._sleep = lambda s: None  # type: ignore[attr-defined]
    fake_llm.reply(plan(item("ETH/USDT", "noop", 0)))
    report = resumed.step()
    assert report.ok and report.cycle == 2
    assert feedback_section(user_message(fake_llm.chat_requests[-1])) == in_process
