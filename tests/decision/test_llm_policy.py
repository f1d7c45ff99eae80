"""LlmPolicy against the fake OpenAI-compatible server, over real HTTP (no real provider)."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.decision.composer import GuardedComposer
from strategy_agent.decision.guardrails import GuardrailLimits
from strategy_agent.decision.llm_policy import LlmPolicy, build_llm_policy, litellm_model
from strategy_agent.decision.system_prompt import build_system_prompt
from strategy_agent.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidPlanError,
    ProviderTimeoutError,
    RateLimitError,
    TemporaryError,
)
from strategy_agent.models import (
    ComposeContext,
    ComposeResult,
    ExchangeConfig,
    FeatureVector,
    InstrumentRef,
    ModelConfig,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
    TradingConfig,
    UserRequest,
)
from strategy_agent.trading_history.response_cache import ResponseCache
from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan

KEY = "test-key-7f3a9c1e5b2d"
TS = 1_736_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
CONSTRAINTS: dict[str, Any] = {
    "symbols": SYMBOLS,
    "market_type": "spot",
    "allow_short": False,
    "max_leverage": 1.0,
    "max_positions": 2,
    "max_position_pct": 0.5,
    "max_position_qty": {},
    "max_gross_exposure": 1.0,
    "max_net_exposure": 1.0,
    "min_confidence": 0.0,
    "cooldown_ms": 0,
    "fee_bps": 10.0,
    "slippage_bps": 5.0,
}
VALID_PLAN = {
    "items": [
        {
            "instrument": "BTC/USDT",
            "action": "buy",
            "target_qty": 0.05,
            "confidence": 0.8,
            "rationale": "uptrend",
        },
        {"instrument": "ETH/USDT", "action": "noop", "target_qty": 0, "confidence": 0.5},
    ],
    "notes": "follow the trend",
}


def make_context(ts: int = TS, rsi: float = 55.0) -> ComposeContext:
    features = [
        FeatureVector(
            ts=ts,
            instrument=InstrumentRef(symbol=symbol),
            values={"close": price, "ema_12": price * 0.99, "rsi_14": rsi},
            meta={
                "candle_ts": ts - 3_600_000,
                "series": {"close": [price] * 12, "rsi_14": [50.0] * 12},
            },
        )
        for symbol, price in (("BTC/USDT", 60_000.0), ("ETH/USDT", 3_000.0))
    ]
    portfolio = PortfolioView(
        ts=ts,
        cash=8_800.0,
        positions={
            "BTC/USDT": PositionSnapshot(
                instrument=InstrumentRef(symbol="BTC/USDT"),
                quantity=0.02,
                avg_price=59_000.0,
                mark_price=60_000.0,
                entry_ts=ts - 7_200_000,
            )
        },
        total_value=10_000.0,
        initial_capital=10_000.0,
    )
    return ComposeContext(
        ts=ts,
        compose_id="c-1",
        features=features,
        portfolio=portfolio,
        digest=TradeDigest(ts=ts),
        prompt_text="Follow the trend.",
        market_snapshot={"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0},
        constraints=CONSTRAINTS,
    )


def make_policy(
    server: FakeLlmServer,
    *,
    model_id: str = "fake-model",
    timeout_s: float = 5.0,
    max_retries: int = 3,
    cache: ResponseCache | None = None,
    sleeps: list[float] | None = None,
    max_retry_after_s: float = 120.0,
) -> LlmPolicy:
    config = ModelConfig(
        provider="openai",
        model_id=model_id,
        api_base=server.api_base,
        api_key_env="FAKE_LLM_KEY",
        temperature=0.0,
        timeout_s=timeout_s,
    )
    recorded = sleeps if sleeps is not None else []
    return LlmPolicy(
        config,
        build_system_prompt(CONSTRAINTS),
        SecretStr(KEY),
        cache=cache,
        max_retries=max_retries,
        backoff_base_s=0.01,
        sleep=recorded.append,
        max_retry_after_s=max_retry_after_s,
        jitter=lambda: 0.0,
    )


def plans(decision: Any) -> list[tuple[str, str, float]]:
    return [(i.instrument.symbol, i.action, i.target_qty) for i in decision.proposal.items]


# --- replies ----------------------------------------------------------------------------


def test_valid_plan_and_its_audit(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply(json.dumps(VALID_PLAN), prompt_tokens=321, completion_tokens=45)
    policy = make_policy(fake_llm)
    decision = policy.propose(make_context())

    assert plans(decision) == [("BTC/USDT", "buy", 0.05), ("ETH/USDT", "noop", 0.0)]
    assert decision.proposal.notes == "follow the trend"
    assert decision.rejected_items == []
    audit = decision.audit
    assert audit["model"] == "openai/fake-model" and audit["provider"] == "openai"
    assert len(audit["prompt_hash"]) == 64
    assert (audit["prompt_tokens"], audit["completion_tokens"]) == (321, 45)
    assert audit["cost_usd"] is None  # unknown model: litellm has no price
    assert audit["retries"] == 0 and audit["http_requests"] == 1
    assert audit["repair_attempted"] is False and audit["cache_hit"] is False
    assert audit["latency_ms"] >= 0
    assert json.loads(audit["raw_reply"]) == VALID_PLAN
    assert audit["plan"]["items"][0]["instrument"]["symbol"] == "BTC/USDT"
    assert [m["role"] for m in audit["messages"]] == ["system", "user"]
    assert audit["messages"] == policy.messages_for(make_context())
    json.dumps(audit)  # the audit is stored as JSON

    (request,) = fake_llm.chat_requests
    assert request.body["model"] == "fake-model"
    assert request.body["messages"] == audit["messages"]
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["temperature"] == 0.0
    assert request.headers.get("authorization") == f"Bearer {KEY}"


def test_structured_output_schema_is_sent_where_supported_and_cost_recorded(
    fake_llm: FakeLlmServer,
) -> None:
    fake_llm.reply(json.dumps(VALID_PLAN), model="gpt-4o-mini")
    decision = make_policy(fake_llm, model_id="gpt-4o-mini").propose(make_context())
    body = fake_llm.chat_requests[0].body
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == {"items", "notes"}
    assert decision.audit["response_format"] == "json_schema"
    assert decision.audit["cost_usd"] is not None and decision.audit["cost_usd"] > 0


def test_fenced_json_and_prose_around_json(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply("```json\n" + json.dumps(VALID_PLAN) + "\n```")
    fake_llm.reply(
        "After looking at the data, here is my plan: " + json.dumps(VALID_PLAN) + " Cheers."
    )
    policy = make_policy(fake_llm)
    for _ in range(2):
        decision = policy.propose(make_context())
        assert plans(decision)[0] == ("BTC/USDT", "buy", 0.05)
        assert decision.audit["repair_attempted"] is False
    assert len(fake_llm.chat_requests) == 2


def test_prose_only_gets_one_repair_round_that_succeeds(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply("I think buying BTC is wise today.", prompt_tokens=100, completion_tokens=10)
    fake_llm.reply(json.dumps(VALID_PLAN), prompt_tokens=150, completion_tokens=30)
    decision = make_policy(fake_llm).propose(make_context())

    assert plans(decision)[0] == ("BTC/USDT", "buy", 0.05)
    audit = decision.audit
    assert audit["repair_attempted"] is True
    assert "no JSON" in audit["repair_reason"]
    assert audit["first_reply"] == "I think buying BTC is wise today."
    assert (audit["prompt_tokens"], audit["completion_tokens"]) == (250, 40)
    first, repair = fake_llm.chat_requests
    messages = repair.body["messages"]
    assert messages[:2] == first.body["messages"]
    assert messages[2] == {"role": "assistant", "content": "I think buying BTC is wise today."}
    assert messages[3]["role"] == "user" and "no JSON" in messages[3]["content"]


@pytest.mark.parametrize(
    "bad_reply",
    [
        "Sorry, I cannot decide.",
        '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 0.0',
        "",
        None,
    ],
    ids=["prose-only", "truncated", "empty", "null-content"],
)
def test_unusable_twice_raises_invalid_plan_with_the_repair_in_the_audit(
    fake_llm: FakeLlmServer, bad_reply: str | None
) -> None:
    fake_llm.reply(bad_reply)
    fake_llm.reply(bad_reply)
    with pytest.raises(InvalidPlanError, match="repair attempted") as caught:
        make_policy(fake_llm).propose(make_context())
    audit = caught.value.audit  # type: ignore[attr-defined]
    assert audit["repair_attempted"] is True
    assert audit["http_requests"] == 2 and audit["plan"] is None
    assert "repair attempted" in audit["error"]
    assert len(fake_llm.chat_requests) == 2


def test_truncated_then_valid_recovers(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply('{"items": [{"instrument": "BTC/USDT", "act', finish_reason="length")
    fake_llm.reply(json.dumps(VALID_PLAN))
    decision = make_policy(fake_llm).propose(make_context())
    assert decision.audit["repair_attempted"] is True
    assert "cut off" in decision.audit["repair_reason"]
    assert len(decision.proposal.items) == 2


def test_nan_infinity_huge_negative_unknown_duplicates_and_wrong_types(
    fake_llm: FakeLlmServer,
) -> None:
    reply = (
        '{"items": ['
        '{"instrument": "BTC/USDT", "action": "buy", "target_qty": NaN},'
        '{"instrument": "ETH/USDT", "action": "buy", "target_qty": Infinity},'
        '{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1e12},'
        '{"instrument": "ETH/USDT", "action": "sell", "target_qty": -50},'
        '{"instrument": "DOGE/USDT", "action": "buy", "target_qty": 100},'
        '{"instrument": "BTC/USDT", "action": "sell", "target_qty": 0},'
        '{"instrument": ["ETH/USDT"], "action": 7, "target_qty": "lots"}'
        "]}"
    )
    fake_llm.reply(reply)
    decision = make_policy(fake_llm).propose(make_context())
    assert plans(decision) == [
        ("BTC/USDT", "buy", 1e12),
        ("ETH/USDT", "sell", -50.0),
        ("DOGE/USDT", "buy", 100.0),
        ("BTC/USDT", "sell", 0.0),
    ]
    reasons = [r.reasons[0] for r in decision.rejected_items]
    assert len(reasons) == 3
    assert "not a finite number" in reasons[0] and "not a finite number" in reasons[1]
    assert "instrument" in reasons[2]
    assert decision.audit["repair_attempted"] is False


# --- transport failures -------------------------------------------------------------------


def test_http_500_then_success_is_retried_once(fake_llm: FakeLlmServer) -> None:
    fake_llm.error(500, "upstream exploded")
    fake_llm.reply(json.dumps(VALID_PLAN))
    sleeps: list[float] = []
    decision = make_policy(fake_llm, sleeps=sleeps).propose(make_context())
    assert decision.audit["retries"] == 1
    assert decision.audit["http_requests"] == 2
    assert len(fake_llm.chat_requests) == 2
    assert sleeps == [pytest.approx(0.01)]


def test_backoff_grows_exponentially_until_temporary_error(fake_llm: FakeLlmServer) -> None:
    for _ in range(4):
        fake_llm.error(503, "overloaded")
    sleeps: list[float] = []
    with pytest.raises(TemporaryError, match="gave up after 3 retries") as caught:
        make_policy(fake_llm, sleeps=sleeps).propose(make_context())
    assert sleeps == [pytest.approx(0.01), pytest.approx(0.02), pytest.approx(0.04)]
    assert len(fake_llm.chat_requests) == 4
    assert caught.value.audit["retries"] == 3  # type: ignore[attr-defined]


def test_429_honours_retry_after(fake_llm: FakeLlmServer) -> None:
    fake_llm.error(429, "slow down", headers={"retry-after": "2"})
    fake_llm.reply(json.dumps(VALID_PLAN))
    sleeps: list[float] = []
    decision = make_policy(fake_llm, sleeps=sleeps).propose(make_context())
    assert len(sleeps) == 1 and sleeps[0] >= 2.0
    assert decision.audit["retries"] == 1
    assert len(decision.proposal.items) == 2


def test_429_with_a_long_retry_after_gives_up_at_once(fake_llm: FakeLlmServer) -> None:
    fake_llm.error(429, "quota exhausted", headers={"retry-after": "3600"})
    sleeps: list[float] = []
    with pytest.raises(RateLimitError) as caught:
        make_policy(fake_llm, sleeps=sleeps, max_retry_after_s=60).propose(make_context())
    assert caught.value.retry_after_s == 3600
    assert sleeps == []
    assert len(fake_llm.chat_requests) == 1


def test_timeout_raises_temporary_error_after_retries(fake_llm: FakeLlmServer) -> None:
    fake_llm.reply(json.dumps(VALID_PLAN), delay_s=3)
    fake_llm.reply(json.dumps(VALID_PLAN), delay_s=3)
    sleeps: list[float] = []
    policy = make_policy(fake_llm, timeout_s=0.5, max_retries=1, sleeps=sleeps)
    with pytest.raises(ProviderTimeoutError, match="raise timeout_s") as caught:
        policy.propose(make_context())
    assert isinstance(caught.value, TemporaryError)
    assert len(sleeps) == 1
    assert caught.value.audit["retries"] == 1  # type: ignore[attr-defined]
    assert len(fake_llm.chat_requests) == 2


def test_401_is_an_authentication_error_without_retry(fake_llm: FakeLlmServer) -> None:
    fake_llm.error(401, f"Incorrect API key provided: {KEY}")
    sleeps: list[float] = []
    with pytest.raises(AuthenticationError) as caught:
        make_policy(fake_llm, sleeps=sleeps).propose(make_context())
    message = str(caught.value)
    assert "FAKE_LLM_KEY" in message  # says which variable to fix
    assert KEY not in message
    assert sleeps == []
    assert len(fake_llm.chat_requests) == 1


@pytest.mark.parametrize(
    ("status", "error_type", "hint"),
    [
        (404, ConfigurationError, "model_id"),
        (400, ConfigurationError, "rejected the request"),
        (403, AuthenticationError, "permissions"),
        (402, AuthenticationError, "credit"),
    ],
)
def test_client_errors_stop_without_retry(
    fake_llm: FakeLlmServer, status: int, error_type: type[Exception], hint: str
) -> None:
    fake_llm.error(status, "nope")
    with pytest.raises(error_type, match=hint):
        make_policy(fake_llm).propose(make_context())
    assert len(fake_llm.chat_requests) == 1


def test_response_format_refused_is_retried_once_without_it(fake_llm: FakeLlmServer) -> None:
    fake_llm.error(400, "response_format of type json_object is not supported by this model")
    fake_llm.reply(json.dumps(VALID_PLAN))
    fake_llm.reply(json.dumps(VALID_PLAN))
    policy = make_policy(fake_llm)
    decision = policy.propose(make_context())
    assert len(decision.proposal.items) == 2
    first, second = fake_llm.chat_requests
    assert "response_format" in first.body and "response_format" not in second.body
    assert decision.audit["retries"] == 0
    policy.propose(make_context())  # later cycles no longer ask for it
    assert "response_format" not in fake_llm.chat_requests[2].body


# --- cache ----------------------------------------------------------------------------------


def test_cache_replay_makes_no_http_request_and_gives_identical_decisions(
    fake_llm: FakeLlmServer, db_path: Path
) -> None:
    fake_llm.reply(json.dumps(VALID_PLAN))
    policy = make_policy(fake_llm, cache=ResponseCache(db_path))
    first = policy.propose(make_context())
    second = make_policy(fake_llm, cache=ResponseCache(db_path)).propose(make_context())

    assert len(fake_llm.chat_requests) == 1
    assert second.proposal == first.proposal
    assert second.rejected_items == first.rejected_items
    assert second.audit["cache_hit"] is True and first.audit["cache_hit"] is False
    assert second.audit["http_requests"] == 0
    assert second.audit["cost_usd"] == 0.0
    assert second.audit["prompt_hash"] == first.audit["prompt_hash"]


def test_cache_misses_when_the_context_changes(fake_llm: FakeLlmServer, db_path: Path) -> None:
    fake_llm.reply(json.dumps(VALID_PLAN))
    fake_llm.reply(json.dumps({"items": []}))
    policy = make_policy(fake_llm, cache=ResponseCache(db_path))
    policy.propose(make_context(TS))
    later = policy.propose(make_context(TS + 3_600_000))
    assert later.audit["cache_hit"] is False and later.proposal.items == []
    assert len(fake_llm.chat_requests) == 2


def test_cache_replays_a_repair_round_too(fake_llm: FakeLlmServer, db_path: Path) -> None:
    fake_llm.reply("prose only")
    fake_llm.reply(json.dumps(VALID_PLAN))
    first = make_policy(fake_llm, cache=ResponseCache(db_path)).propose(make_context())
    second = make_policy(fake_llm, cache=ResponseCache(db_path)).propose(make_context())
    assert len(fake_llm.chat_requests) == 2
    assert second.proposal == first.proposal and second.audit["repair_attempted"] is True
    assert second.audit["cache_hit"] is True


# --- the key never leaks -------------------------------------------------------------------


def test_key_never_appears_in_logs_or_output_even_at_debug_level(
    fake_llm: FakeLlmServer,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # litellm, openai and httpx log requests at DEBUG
    fake_llm.error(500, "upstream exploded")
    fake_llm.reply("prose only")
    fake_llm.reply(json.dumps(VALID_PLAN))
    fake_llm.error(401, "Incorrect API key provided")
    policy = make_policy(fake_llm, cache=ResponseCache(db_path))
    decision = policy.propose(make_context())
    with pytest.raises(AuthenticationError) as caught:
        policy.propose(make_context(TS + 3_600_000))

    out, err = capfd.readouterr()
    assert "Received openai error" in caplog.text + err  # the debug logs were really on
    texts = [
        json.dumps(decision.audit),
        json.dumps(caught.value.audit),  # type: ignore[attr-defined]
        str(caught.value),
        caplog.text,
        out,
        err,
    ]
    assert all(KEY not in text for text in texts)
    assert KEY.encode() not in db_path.read_bytes()
    assert decision.audit["retries"] == 1 and decision.audit["repair_attempted"] is True


def test_key_echoed_by_the_server_is_redacted_from_everything_we_write(
    fake_llm: FakeLlmServer, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="strategy_agent")
    fake_llm.error(500, f"server echoes {KEY}")
    fake_llm.reply(f"prose that echoes {KEY}")
    fake_llm.reply(json.dumps(VALID_PLAN) + f" {KEY}")
    fake_llm.error(401, f"Incorrect API key provided: {KEY}")
    policy = make_policy(fake_llm, cache=ResponseCache(db_path))
    decision = policy.propose(make_context())
    with pytest.raises(AuthenticationError) as caught:
        policy.propose(make_context(TS + 3_600_000))

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("strategy_agent")]
    assert any("retry 1/3" in message for message in ours)
    texts = [
        json.dumps(decision.audit),
        json.dumps(caught.value.audit),  # type: ignore[attr-defined]
        str(caught.value),
        repr(caught.value),
        decision.proposal.model_dump_json(),
        *ours,
    ]
    assert all(KEY not in text for text in texts)
    assert "***" in decision.audit["raw_reply"] and "***" in str(caught.value)


# --- wiring -----------------------------------------------------------------------------------


def test_build_llm_policy_from_a_user_request(
    fake_llm: FakeLlmServer, db_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="fake-model",
            api_base=fake_llm.api_base,
            api_key_env="FAKE_LLM_KEY",
        ),
        exchange=ExchangeConfig(),
        trading=TradingConfig(symbols=SYMBOLS),
    )
    policy = build_llm_policy(
        request, CONSTRAINTS, db_path=db_path, secrets_path=tmp_path / "none.toml"
    )
    assert policy.cache is not None  # simulated market: replays are cached
    assert "BTC/USDT, ETH/USDT only" in policy.system_prompt
    assert policy.name == "llm:openai/fake-model"
    fake_llm.reply(json.dumps(VALID_PLAN))
    assert len(policy.propose(make_context()).proposal.items) == 2
    assert fake_llm.chat_requests[0].headers.get("authorization") == f"Bearer {KEY}"


def test_build_llm_policy_needs_a_key_for_a_remote_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    request = UserRequest(llm=ModelConfig(provider="openai", model_id="gpt-4o-mini"))
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        build_llm_policy(request, CONSTRAINTS, secrets_path=tmp_path / "none.toml")


def test_local_server_without_key_sends_a_placeholder(fake_llm: FakeLlmServer) -> None:
    config = ModelConfig(provider="openai", model_id="local", api_base=fake_llm.api_base)
    policy = LlmPolicy(config, build_system_prompt(CONSTRAINTS), None)
    fake_llm.reply(json.dumps(VALID_PLAN))
    assert len(policy.propose(make_context()).proposal.items) == 2
    assert fake_llm.chat_requests[0].headers.get("authorization") == "Bearer no-key"


def test_builtin_config_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="builtin"):
        LlmPolicy(ModelConfig(), "system", None)
    assert (
        litellm_model(ModelConfig(provider="anthropic", model_id="claude-x"))
        == "anthropic/claude-x"
    )


_ITEM = st.fixed_dictionaries(
    {
        "instrument": st.sampled_from(["BTC/USDT", "ETH/USDT", "DOGE/USDT", "btcusdt", ""]),
        "action": st.sampled_from(["buy", "sell", "flat", "noop", "hold", "moon"]),
        "target_qty": st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-(10**12), max_value=10**12),
            st.sampled_from(["0.5", "abc", "1e999", None]),
        ),
    },
    optional={"confidence": st.one_of(st.floats(-1, 2), st.text(max_size=4))},
)
_JSONISH_REPLIES = st.lists(_ITEM, max_size=6).map(
    lambda items: json.dumps({"items": items}, allow_nan=True)
)


# --- through the composer: the cycle completes, no limit is broken, the audit says why ---------

LIMITS = GuardrailLimits.model_validate(CONSTRAINTS)
_TRUNCATED = '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 0.0'
_SCENARIOS: dict[str, list[Any]] = {
    "valid": [json.dumps(VALID_PLAN)],
    "fenced": ["```json\n" + json.dumps(VALID_PLAN) + "\n```"],
    "prose-around": ["My plan: " + json.dumps(VALID_PLAN) + " Done."],
    "prose-only": ["I would buy.", "Still prose."],
    "truncated": [_TRUNCATED, _TRUNCATED],
    "empty": ["", ""],
    "nan-infinity": [
        '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": NaN}, {"instrument": "ETH/USDT", "action": "buy", "target_qty": Infinity}]}'
    ],
    "huge-negative": [
        '{"items": [{"instrument": "BTC/USDT", "action": "buy", "target_qty": 1e15}, {"instrument": "ETH/USDT", "action": "sell", "target_qty": -1e6}]}'
    ],
    "unknown-symbol": [
        '{"items": [{"instrument": "DOGE/USDT", "action": "buy", "target_qty": 1000}]}'
    ],
    "duplicates": [
        '{"items": [{"instrument": "ETH/USDT", "action": "buy", "target_qty": 1}, {"instrument": "ETH/USDT", "action": "buy", "target_qty": 0.5}]}'
    ],
    "wrong-types": ['{"items": [{"instrument": 5, "action": true, "target_qty": "much"}]}'],
    "http-500": [(500, "boom"), json.dumps(VALID_PLAN)],
    "http-429": [(429, "slow down", {"retry-after": "1"}), json.dumps(VALID_PLAN)],
    "timeout": [("delay", json.dumps(VALID_PLAN))],
}


def _script(server: FakeLlmServer, steps: list[Any]) -> None:
    for step in steps:
        if isinstance(step, tuple) and step[0] == "delay":
            server.reply(step[1], delay_s=2)
        elif isinstance(step, tuple):
            server.error(*step)
        else:
            server.reply(step)


def assert_within_limits(result: ComposeResult, context: ComposeContext) -> None:
    positions = {s: p.quantity for s, p in context.portfolio.positions.items()}
    for instruction in result.instructions:
        symbol = instruction.instrument.symbol
        assert symbol in LIMITS.symbols
        signed = instruction.quantity if instruction.side == "buy" else -instruction.quantity
        positions[symbol] = positions.get(symbol, 0.0) + signed
    equity = context.portfolio.total_value or 0.0
    notionals = {s: abs(q) * context.market_snapshot[s] for s, q in positions.items()}
    for symbol, qty in positions.items():
        assert qty >= -1e-12, f"{symbol} went short on spot"
        assert notionals[symbol] <= LIMITS.max_position_pct * equity * 1.001 + 1e-6
    assert sum(notionals.values()) <= LIMITS.max_gross_exposure * equity * 1.001 + 1e-6
    assert sum(1 for q in positions.values() if abs(q) > 1e-12) <= LIMITS.max_positions


@pytest.mark.parametrize("scenario", list(_SCENARIOS))
def test_every_reply_scenario_completes_a_compose_within_limits(
    fake_llm: FakeLlmServer, scenario: str
) -> None:
    _script(fake_llm, _SCENARIOS[scenario])
    policy = make_policy(fake_llm, timeout_s=0.5, max_retries=1 if scenario != "timeout" else 0)
    composer = GuardedComposer(policy, LIMITS, SimulatedMarketRules())
    context = make_context()
    result = composer.compose(context)

    assert_within_limits(result, context)
    audit = result.audit
    fell_back = scenario in {"prose-only", "truncated", "empty", "timeout"}
    assert audit["fallback_used"] is fell_back
    if fell_back:
        assert audit["fallback_reason"]
        assert result.instructions == []
    else:
        assert audit["model"] == "openai/fake-model" and audit["raw_reply"] is not None
    if scenario in {"nan-infinity", "wrong-types", "unknown-symbol"}:
        assert audit["rejected"] >= 1
        assert all(o.reasons for o in result.outcomes if o.status == "rejected")
    if scenario in {"http-500", "http-429"}:
        assert audit["retries"] == 1


def test_auth_error_stops_the_cycle_through_the_composer(fake_llm: FakeLlmServer) -> None:
    fake_llm.error(401, "invalid key")
    composer = GuardedComposer(make_policy(fake_llm), LIMITS, SimulatedMarketRules())
    with pytest.raises(AuthenticationError, match="FAKE_LLM_KEY"):
        composer.compose(make_context())
    assert len(fake_llm.chat_requests) == 1


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reply=st.one_of(st.text(max_size=80), _JSONISH_REPLIES))
def test_composer_never_raises_or_breaks_a_limit_on_arbitrary_replies(
    fake_llm: FakeLlmServer, reply: str
) -> None:
    fake_llm.clear()
    fake_llm.reply(reply)
    fake_llm.reply(reply)
    composer = GuardedComposer(make_policy(fake_llm, max_retries=0), LIMITS, SimulatedMarketRules())
    context = make_context()
    result = composer.compose(context)
    assert_within_limits(result, context)
    assert result.audit["fallback_used"] or result.proposal is not None


def test_demo_server_answers_with_an_rsi_plan_that_the_composer_executes() -> None:
    server = FakeLlmServer(auto_reply=rsi_plan).start()
    try:
        composer = GuardedComposer(make_policy(server), LIMITS, SimulatedMarketRules())
        low = composer.compose(make_context(rsi=30.0))
        high = composer.compose(make_context(TS + 3_600_000, rsi=70.0))
    finally:
        server.stop()
    assert [(i.instrument.symbol, i.side) for i in low.instructions] == [
        ("BTC/USDT", "buy"),
        ("ETH/USDT", "buy"),
    ]
    assert low.audit["fallback_used"] is False
    assert [(i.instrument.symbol, i.side) for i in high.instructions] == [("BTC/USDT", "sell")]
    assert json.loads(rsi_plan({"messages": []})) == {
        "items": [],
        "notes": "demo RSI rule from the fake LLM server",
    }


def test_a_broken_cache_is_skipped_not_fatal(fake_llm: FakeLlmServer, db_path: Path) -> None:
    cache = ResponseCache(db_path)
    with sqlite3.connect(db_path) as conn:
        conn.execute("drop table llm_cache")
    fake_llm.reply(json.dumps(VALID_PLAN))
    decision = make_policy(fake_llm, cache=cache).propose(make_context())
    assert len(decision.proposal.items) == 2 and decision.audit["cache_hit"] is False
