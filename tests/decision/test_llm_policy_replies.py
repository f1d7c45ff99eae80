"""LlmPolicy with replies as real models and providers send them, over real HTTP (fake server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strategy_agent.decision.llm_policy import LlmPolicy
from strategy_agent.decision.system_prompt import build_system_prompt
from strategy_agent.errors import AuthenticationError, ConfigurationError, InvalidPlanError
from strategy_agent.models import ModelConfig
from tests.decision.test_llm_policy import (
    CONSTRAINTS,
    KEY,
    VALID_PLAN,
    make_context,
    make_policy,
    plans,
)
from tests.fakes.fake_llm_server import FakeLlmServer

DRAFT = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 0.066}]}'


def policy_with(server: FakeLlmServer, **config: Any) -> LlmPolicy:
    model = ModelConfig(
        provider="openai",
        model_id=config.pop("model_id", "fake-model"),
        api_base=server.api_base,
        timeout_s=5,
        **config,
    )
    return LlmPolicy(
        model, build_system_prompt(CONSTRAINTS), None, backoff_base_s=0.0, sleep=lambda s: None
    )


# --- reasoning ---------------------------------------------------------------------------


def test_a_draft_in_reasoning_without_an_opening_tag_is_not_the_plan(
    fake_llm: FakeLlmServer,
) -> None:
    fake_llm.reply(
        f"The trend is up, so maybe {DRAFT}\nBut RSI is 74: do nothing.\n</think>\n\n"
        '{"items": [], "notes": "overbought"}'
    )
    decision = make_policy(fake_llm).propose(make_context())
    assert plans(decision) == []
    audit = decision.audit
    assert audit["reasoning_dropped"] is True
    assert "maybe" in audit["reasoning"] and "</think>" not in audit["reasoning"]
    assert audit["repair_attempted"] is False
    assert "</think>" in audit["raw_reply"]  # the raw reply is kept as it came


def test_reasoning_split_off_by_the_server_is_recorded_too(fake_llm: FakeLlmServer) -> None:
    fake_llm.enqueue(
        200,
        {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": json.dumps(VALID_PLAN),
                        "reasoning_content": "RSI 55, trend up: buy a little.",
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        },
    )
    decision = make_policy(fake_llm).propose(make_context())
    assert len(decision.proposal.items) == 2
    assert decision.audit["reasoning"] == "RSI 55, trend up: buy a little."


def test_a_long_reasoning_does_not_push_the_answer_out_of_the_stored_reply(
    fake_llm: FakeLlmServer,
) -> None:
    reasoning = "Considering every indicator again. " * 400
    fake_llm.reply(f"{reasoning}</think>\n{json.dumps(VALID_PLAN)}")  # no opening tag
    decision = make_policy(fake_llm).propose(make_context())
    raw = decision.audit["raw_reply"]
    assert len(raw) <= 4_000
    assert raw.endswith(json.dumps(VALID_PLAN)) and "reasoning left out" in raw
    assert len(decision.audit["reasoning"]) == 2_000


# --- tool calls -------------------------------------------------------------------------


def test_a_plan_in_a_tool_call_is_read_and_stored_as_the_raw_reply(
    fake_llm: FakeLlmServer,
) -> None:
    arguments = json.dumps(VALID_PLAN)
    fake_llm.tool_call(arguments)
    decision = make_policy(fake_llm).propose(make_context())
    assert plans(decision)[0] == ("BTC/USDT", "buy", 0.05)
    audit = decision.audit
    assert audit["raw_reply"] == arguments
    assert audit["reply_source"] == "tool_call:submit_plan"
    assert audit["repair_attempted"] is False and audit["http_requests"] == 1


# --- stopped replies ----------------------------------------------------------------------


def test_a_reply_cut_off_by_max_tokens_is_never_parsed_and_gets_a_repair(
    fake_llm: FakeLlmServer,
) -> None:
    complete_draft = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 0.05}]}'
    fake_llm.reply(complete_draft + "\nNotes: because the", finish_reason="length")
    fake_llm.reply('{"items": [], "notes": "short answer"}')
    decision = make_policy(fake_llm).propose(make_context())
    assert plans(decision) == []
    audit = decision.audit
    assert audit["repair_attempted"] is True
    assert "max_tokens" in audit["repair_reason"] and '"length"' in audit["repair_reason"]
    repair = fake_llm.chat_requests[1].body["messages"][-1]["content"]
    assert "max_tokens" in repair


@pytest.mark.parametrize(
    ("finish_reason", "refusal", "words"),
    [("content_filter", None, "content filter"), ("stop", "I can't help with that.", "refused")],
)
def test_a_filtered_or_refused_reply_falls_back_without_a_repair(
    fake_llm: FakeLlmServer, finish_reason: str, refusal: str | None, words: str
) -> None:
    fake_llm.enqueue(
        200,
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": DRAFT, "refusal": refusal},
                    "finish_reason": finish_reason,
                }
            ],
        },
    )
    with pytest.raises(InvalidPlanError, match=words) as caught:
        make_policy(fake_llm).propose(make_context())
    audit = caught.value.audit  # type: ignore[attr-defined]
    assert audit["finish_reason"] == finish_reason
    assert audit["repair_attempted"] is False and audit["plan"] is None
    assert len(fake_llm.chat_requests) == 1


def test_a_stopped_reply_is_not_cached(fake_llm: FakeLlmServer, db_path: Any) -> None:
    from strategy_agent.trading_history.response_cache import ResponseCache

    fake_llm.reply(DRAFT, finish_reason="content_filter")
    fake_llm.reply(json.dumps(VALID_PLAN))
    with pytest.raises(InvalidPlanError):
        make_policy(fake_llm, cache=ResponseCache(db_path)).propose(make_context())
    decision = make_policy(fake_llm, cache=ResponseCache(db_path)).propose(make_context())
    assert len(decision.proposal.items) == 2 and decision.audit["cache_hit"] is False


# --- provider quirks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "deepseek-reasoner does not support Json Output."),
        (400, "RESPONSE_FORMAT IS NOT SUPPORTED FOR THIS MODEL"),
        (422, "Json Mode is unavailable for this model"),
    ],
)
def test_a_json_mode_refusal_is_retried_without_it_and_remembered_for_the_model(
    fake_llm: FakeLlmServer, status: int, message: str
) -> None:
    fake_llm.error(status, message)
    fake_llm.reply(json.dumps(VALID_PLAN))
    fake_llm.reply(json.dumps(VALID_PLAN))
    decision = make_policy(fake_llm).propose(make_context())
    assert len(decision.proposal.items) == 2
    first, second = fake_llm.chat_requests
    assert "response_format" in first.body and "response_format" not in second.body
    assert decision.audit["response_format"].startswith("instructions")
    assert message[:20] in decision.audit["response_format_refused"]
    # a new policy for the same model and server (a resumed strategy) does not ask again
    make_policy(fake_llm).propose(make_context())
    assert len(fake_llm.chat_requests) == 3
    assert "response_format" not in fake_llm.chat_requests[2].body


def test_a_billing_stop_on_429_halts_at_once_with_add_credit_advice(
    fake_llm: FakeLlmServer,
) -> None:
    fake_llm.insufficient_quota()
    sleeps: list[float] = []
    with pytest.raises(AuthenticationError, match="add credit") as caught:
        make_policy(fake_llm, sleeps=sleeps).propose(make_context())
    assert "429" in str(caught.value) and KEY not in str(caught.value)
    assert sleeps == [] and len(fake_llm.chat_requests) == 1


# --- context window -----------------------------------------------------------------------


def _series_points(request_body: Any) -> int:
    user = request_body["messages"][1]["content"]
    if "series (oldest first):" not in user:
        return 0
    block = user.split("series (oldest first):\n", 1)[1].split("\n\n", 1)[0]
    return sum(len(part.split()) - 1 for line in block.splitlines() for part in line.split("|"))


def test_the_oldest_series_points_are_dropped_to_fit_the_window(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply(json.dumps(VALID_PLAN))
    full = policy_with(fake_llm, context_window=100_000, max_tokens=100)
    full_tokens = full.propose(make_context()).audit["prompt_fit"]["prompt_tokens_estimate"]
    fake_llm.reply(json.dumps(VALID_PLAN))
    tight = policy_with(fake_llm, context_window=full_tokens + 100 - 30, max_tokens=100)
    decision = tight.propose(make_context())

    assert len(decision.proposal.items) == 2
    fit = decision.audit["prompt_fit"]
    assert decision.audit["prompt_trimmed"] is True and fit["series_points_dropped"] > 0
    assert fit["prompt_tokens_estimate"] <= fit["context_window"] - 100
    sent, before = fake_llm.chat_requests[1].body, fake_llm.chat_requests[0].body
    assert 0 < _series_points(sent) < _series_points(before)
    assert sent["messages"] == decision.audit["messages"]


def test_a_prompt_that_cannot_fit_even_trimmed_halts_with_the_sizes(
    fake_llm: FakeLlmServer,
) -> None:
    with pytest.raises(ConfigurationError, match="context window is 600 tokens") as caught:
        policy_with(fake_llm, context_window=600, max_tokens=100).propose(make_context())
    message = str(caught.value)
    assert "even with the price series dropped" in message and "500 fit" in message
    assert "context_window" in message
    assert fake_llm.chat_requests == []


def test_the_servers_token_count_teaches_the_fit(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply(json.dumps(VALID_PLAN), prompt_tokens=10)
    probe = policy_with(fake_llm, context_window=100_000)
    estimate = probe.propose(make_context()).audit["prompt_fit"]["prompt_tokens_estimate"]
    window = estimate + 140  # fits by litellm's count, with 40 to spare after the reserve
    policy = policy_with(fake_llm, context_window=window, max_tokens=100)
    # a local tokenizer counts 10 % more than litellm: the prompt no longer fits whole
    fake_llm.reply(json.dumps(VALID_PLAN), prompt_tokens=round(estimate * 1.1))
    first = policy.propose(make_context())
    assert first.audit["prompt_trimmed"] is False
    fake_llm.reply(json.dumps(VALID_PLAN))
    second = policy.propose(make_context())
    assert second.audit["prompt_fit"]["token_ratio"] == pytest.approx(1.1, abs=0.01)
    assert second.audit["prompt_trimmed"] is True
    assert second.audit["prompt_fit"]["prompt_tokens_estimate"] <= window - 100


def test_close_long_is_resolved_against_the_held_position(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply(
        '{"items": [{"instrument": "BTC/USDT", "action": "close_long"},'
        ' {"instrument": "ETH/USDT", "action": "close_short"}]}'
    )
    decision = make_policy(fake_llm).propose(make_context())  # holds BTC 0.02 long
    assert plans(decision) == [("BTC/USDT", "flat", 0.0), ("ETH/USDT", "flat", 0.0)]
