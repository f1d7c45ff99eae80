"""LlmPolicy's shortcuts on a replay from the response cache: each cycle's prompt is
rendered once, a reply met again is parsed once, and every decision is the one the
plain parse gives (its own timestamp, positions and symbols)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from strategy_agent.decision import llm_policy, plan_parser
from strategy_agent.decision.llm_policy import LlmPolicy
from strategy_agent.decision.plan_parser import parse_plan
from strategy_agent.decision.system_prompt import build_system_prompt
from strategy_agent.models import (
    ComposeContext,
    FeatureVector,
    InstrumentRef,
    ModelConfig,
    PortfolioView,
    PositionSnapshot,
    TradeDigest,
)
from strategy_agent.trading_history.response_cache import CachedReply, ResponseCache

TS = 1_736_000_000_000
HOUR = 3_600_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
CONSTRAINTS: dict[str, Any] = {"symbols": SYMBOLS, "max_position_pct": 0.5, "fee_bps": 10.0}
NOOP = json.dumps(
    {"items": [{"instrument": s, "action": "noop", "target_qty": 0} for s in SYMBOLS]}
)
REDUCE = json.dumps({"items": [{"instrument": "BTC", "action": "reduce", "target_qty": 0.01}]})


def context(ts: int, btc: float = 0.02) -> ComposeContext:
    features = [
        FeatureVector(
            ts=ts,
            instrument=InstrumentRef(symbol=symbol),
            values={"close": price, "rsi_14": 50.0},
            meta={"candle_ts": ts - HOUR, "series": {"close": [price] * 4}},
        )
        for symbol, price in (("BTC/USDT", 60_000.0), ("ETH/USDT", 3_000.0))
    ]
    positions = {}
    if btc:
        positions["BTC/USDT"] = PositionSnapshot(
            instrument=InstrumentRef(symbol="BTC/USDT"), quantity=btc, avg_price=59_000.0
        )
    return ComposeContext(
        ts=ts,
        compose_id=f"c-{ts}",
        features=features,
        portfolio=PortfolioView(ts=ts, cash=9_000.0, positions=positions, total_value=10_000.0),
        digest=TradeDigest(ts=ts),
        prompt_text="Follow the trend.",
        market_snapshot={"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0},
        constraints=CONSTRAINTS,
    )


def cached_policy(db_path: Path, replies: dict[int, str], **config: Any) -> LlmPolicy:
    """A policy whose cache already holds ``replies`` (by the context's ts): no request."""
    model = ModelConfig(
        provider="openai", model_id="fake-speed", api_base="http://127.0.0.1:9", **config
    )
    policy = LlmPolicy(model, build_system_prompt(CONSTRAINTS), SecretStr("sk-x"))
    cache = ResponseCache(db_path)
    for ts, text in replies.items():
        for btc in (0.02, 0.005):
            messages = policy.messages_for(context(ts, btc))
            cache.put(policy.model, None, messages, CachedReply(text, 10, 5, 0.0))
    policy.cache = cache
    return policy


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The replies ``parse_plan`` really parsed."""
    seen: list[str] = []

    def counted(text: str, *args: Any) -> Any:
        seen.append(text)
        return parse_plan(text, *args)

    monkeypatch.setattr(plan_parser, "parse_plan", counted)
    monkeypatch.setattr(llm_policy, "parse_plan", counted, raising=False)  # where it was called
    return seen


def test_a_reply_met_again_with_the_same_positions_is_parsed_once(
    db_path: Path, parses: list[str]
) -> None:
    policy = cached_policy(db_path, {TS + n * HOUR: NOOP for n in range(4)})
    decisions = [policy.propose(context(TS + n * HOUR)) for n in range(4)]
    assert parses == [NOOP]
    assert all(d.audit["cache_hit"] for d in decisions)
    for n, decision in enumerate(decisions):  # each cycle stamps its own time
        assert decision.proposal.ts == decision.audit["plan"]["ts"] == TS + n * HOUR
        fresh = parse_plan(NOOP, TS + n * HOUR, SYMBOLS, {"BTC/USDT": 0.02})
        assert decision.proposal.items == fresh.proposal.items
        assert decision.proposal.model_meta == {
            "model": "openai/fake-speed",
            "prompt_hash": decision.audit["prompt_hash"],
        }
    assert decisions[0].proposal.items is not decisions[1].proposal.items


def test_a_reply_whose_meaning_depends_on_the_position_is_parsed_for_each_position(
    db_path: Path, parses: list[str]
) -> None:
    policy = cached_policy(db_path, {TS: REDUCE})
    held, too_small, held_again = (policy.propose(context(TS, btc)) for btc in (0.02, 0.005, 0.02))
    assert parses == [REDUCE, REDUCE]  # the third is the first again
    (item,) = held.proposal.items
    assert (item.action, item.target_qty) == ("sell", 0.01)
    assert too_small.proposal.items == [] and "would not reduce" in str(too_small.rejected_items)
    assert held_again.proposal.items == held.proposal.items
    expected = parse_plan(REDUCE, TS, SYMBOLS, {"BTC/USDT": 0.005})
    assert too_small.rejected_items == expected.rejected


@given(st.lists(st.sampled_from([*SYMBOLS, "SOL/USDT", 5, None, ""]), max_size=6))
def test_known_symbols_are_the_listed_strings_then_the_traded_ones(listed: list[Any]) -> None:
    cycle = context(TS).model_copy(update={"constraints": {**CONSTRAINTS, "symbols": listed}})
    traded = [f.instrument.symbol for f in cycle.features]
    plain = list(dict.fromkeys(s for s in [*listed, *traded] if isinstance(s, str)))
    assert llm_policy._known_symbols(cycle) == plain


def test_with_a_known_context_window_the_prompt_is_rendered_once_a_cycle(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = cached_policy(db_path, {TS: NOOP}, context_window=100_000)
    rendered: list[int] = []
    render = llm_policy.render_context

    def counted(ctx: ComposeContext) -> str:
        rendered.append(ctx.ts)
        return render(ctx)

    monkeypatch.setattr(llm_policy, "render_context", counted)
    decision = policy.propose(context(TS))
    assert rendered == [TS]
    assert decision.audit["cache_hit"] and decision.audit["prompt_fit"]["context_window"] == 100_000
    assert decision.audit["messages"] == policy.messages_for(context(TS))
