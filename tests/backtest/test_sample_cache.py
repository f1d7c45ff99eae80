"""``--samples N``: each sample has its own cache key, a re-run reproduces all N, sample 0 is unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.factory import open_runtime
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.response_cache import CachedReply, ResponseCache, cache_key
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer

MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "context"}]
# cache_key("openai/m", 0.7, MESSAGES) as every version before sample indexes computed it
KEY_BEFORE_SAMPLES = "f2b362681a04fd2d9d6cbd1fef37ef60aa80f0c875fc8c635eec58f926e94db5"


def test_sample_0_keeps_the_key_existing_caches_were_written_with() -> None:
    assert cache_key("openai/m", 0.7, MESSAGES) == KEY_BEFORE_SAMPLES
    assert cache_key("openai/m", 0.7, MESSAGES, 0) == KEY_BEFORE_SAMPLES


def test_each_sample_has_its_own_key_and_reply(db_path: Path) -> None:
    keys = {cache_key("openai/m", 0.7, MESSAGES, sample) for sample in range(5)}
    assert len(keys) == 5
    with pytest.raises(ValueError, match="sample_index"):
        cache_key("openai/m", 0.7, MESSAGES, -1)
    cache = ResponseCache(db_path)
    cache.put("openai/m", 0.7, MESSAGES, CachedReply("zero"))
    assert cache.get("openai/m", 0.7, MESSAGES, sample_index=1) is None
    cache.put("openai/m", 0.7, MESSAGES, CachedReply("one"), sample_index=1)
    assert cache.get("openai/m", 0.7, MESSAGES).text == "zero"  # type: ignore[union-attr]
    assert cache.get("openai/m", 0.7, MESSAGES, 1).text == "one"  # type: ignore[union-attr]
    assert len(cache) == 2


def test_a_negative_sample_index_is_refused_in_the_config() -> None:
    with pytest.raises(ValueError, match="sample_index"):
        ModelConfig(provider="openai", model_id="m", sample_index=-1)


def plan(symbol: str, action: str, target: float) -> str:
    item = {"instrument": symbol, "action": action, "target_qty": target, "confidence": 0.8}
    return json.dumps({"items": [item], "notes": f"{action} {target}"})


def first_cycle_reply(db_path: Path, server: FakeLlmServer, sample: int) -> Any:
    store = SqliteStore(db_path)
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="fake-gpt",
            api_base=server.api_base,
            temperature=0.7,
            cache=True,
            timeout_s=5,
            sample_index=sample,
        ),
        trading=TradingConfig(symbols=["BTC/USDT"]),
    )
    sid = store.create_strategy(request, now_ms=0)
    runtime = open_runtime(store, sid, api_key=SecretStr("sk-test"))
    assert runtime.step().ok
    (record,) = store.records(sid, kind="compose", limit=1)
    store.close()
    return record.payload


def test_n_samples_draw_n_replies_and_a_rerun_reproduces_all_of_them(
    db_path: Path, fake_llm: FakeLlmServer
) -> None:
    replies = [
        plan("BTC/USDT", "buy", 0.01),
        plan("BTC/USDT", "buy", 0.02),
        plan("BTC/USDT", "noop", 0),
    ]
    for reply in replies:
        fake_llm.reply(reply)
    first = [first_cycle_reply(db_path, fake_llm, sample) for sample in range(3)]
    assert len(fake_llm.chat_requests) == 3  # the same prompt, three independent draws
    prompts = {json.dumps(r.body["messages"]) for r in fake_llm.chat_requests}
    assert len(prompts) == 1
    assert [p["raw_reply"] for p in first] == replies
    assert not any(p["cache_hit"] for p in first)

    again = [first_cycle_reply(db_path, fake_llm, sample) for sample in range(3)]
    assert len(fake_llm.chat_requests) == 3  # nothing asked again
    assert [p["raw_reply"] for p in again] == replies
    assert all(p["cache_hit"] for p in again)
    assert [p["plan"]["items"] for p in again] == [p["plan"]["items"] for p in first]
