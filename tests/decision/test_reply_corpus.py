"""Every reply of the corpus (``reply_corpus/*.toml``, see its README) read as the model meant it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from strategy_agent.decision.llm_reply import Reply, plan_text_of_tool_calls, stopped_reason
from strategy_agent.decision.plan_parser import ParsedPlan, parse_plan
from strategy_agent.errors import InvalidPlanError

TS = 1_736_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
CORPUS = Path(__file__).parent / "reply_corpus"
_EXPECTATIONS = {"items", "rejected", "error"}


def load_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(CORPUS.glob("*.toml")):
        for case in tomllib.loads(path.read_text("utf-8"))["case"]:
            cases.append({**case, "file": path.name})
    return cases


CASES = load_cases()


def read_reply(case: dict[str, Any]) -> ParsedPlan:
    """The policy's path: tool calls to text, stopped replies refused, then the parser."""
    if "tool_calls" in case:
        text = plan_text_of_tool_calls([(c["name"], c["arguments"]) for c in case["tool_calls"]])
    else:
        text = case["reply"]
    reply = Reply(
        text=text,
        prompt_tokens=None,
        completion_tokens=None,
        cost_usd=None,
        finish_reason=case.get("finish_reason", "stop"),
        cached=False,
        refusal=case.get("refusal"),
    )
    stopped = stopped_reason(reply)
    if stopped is not None:
        raise stopped
    return parse_plan(text, TS, case.get("symbols", SYMBOLS), case.get("positions", {}))


def test_the_corpus_is_large_varied_and_well_formed() -> None:
    assert len(CASES) >= 40
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    for case in CASES:
        assert ("reply" in case) != ("tool_calls" in case), case["id"]
        assert case.get("source"), case["id"]
        assert ("error" in case) != ("items" in case), f"{case['id']}: a plan or an error"
        assert set(case) & _EXPECTATIONS
    assert sum(1 for case in CASES if "error" in case) >= 8
    assert sum(1 for case in CASES if case.get("rejected")) >= 8
    assert sum(1 for case in CASES if "tool_calls" in case) >= 4
    assert sum(1 for case in CASES if case.get("reasoning")) >= 6


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_reply_is_read_as_meant_or_refused_with_its_reason(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(InvalidPlanError) as caught:
            read_reply(case)
        assert case["error"].lower() in str(caught.value).lower()
        return
    parsed = read_reply(case)
    items = [
        [item.instrument.symbol, item.action, item.target_qty] for item in parsed.proposal.items
    ]
    assert items == [[s, a, pytest.approx(q)] for s, a, q in case["items"]]
    expected_rejections = case.get("rejected", [])
    assert len(parsed.rejected) == len(expected_rejections), [r.reasons for r in parsed.rejected]
    for outcome, (symbol, words) in zip(parsed.rejected, expected_rejections, strict=True):
        assert outcome.status == "rejected" and outcome.symbol == symbol
        assert words.lower() in outcome.reasons[0].lower(), outcome.reasons
    assert (parsed.reasoning is not None) == bool(case.get("reasoning")), parsed.reasoning
    if "confidence" in case:
        assert [i.confidence for i in parsed.proposal.items] == case["confidence"]


def test_dropped_reasoning_is_kept_but_cut_short() -> None:
    reasoning = "Let me think about BTC. " * 400
    reply = f"{reasoning}</think>\n" + '{"items": [], "notes": "wait"}'
    parsed = parse_plan(reply, TS, SYMBOLS)
    assert parsed.reasoning is not None
    assert parsed.reasoning.startswith("Let me think about BTC.")
    assert len(parsed.reasoning) == 2_000
