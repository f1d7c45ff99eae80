"""A replay on the fast paths trades exactly as on the per-cycle paths, and resumes after a crash.

Same seed, same config, two databases: every fill, closed trade, equity point
and checkpoint (but the measured latencies) must be the same, cycle by cycle.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.data.series_source import SeriesCandleSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS
from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.features.replay_features import ReplayFeatureComputer
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.replay_speed import REPLAY_GC_THRESHOLD, relaxed_collector
from strategy_agent.trading_history.cycle_batch import BatchedCycleStore
from strategy_agent.trading_history.response_cache import ResponseCache
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan

SID = "speed"
HOUR_MS = 3_600_000
START_MS = DEFAULT_ORIGIN_MS + 200 * HOUR_MS  # after a full lookback
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def ema_request(**trading: Any) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(provider="builtin", model_id="ema_crossover"),
        trading=TradingConfig(symbols=SYMBOLS, seed=11, **trading),
    )


def run(
    path: Path, request: UserRequest, cycles: int, *, fast: bool, batch: int = 64, **kw: Any
) -> None:
    with SqliteStore(path) as store:
        if not store.list_strategies():
            store.create_strategy(request, now_ms=0, strategy_id=SID)
        runtime = open_runtime(store, SID, fast_replay=fast, batch_cycles=batch, **kw)
        for _ in range(cycles):
            assert runtime.step().ok
        runtime.flush()


def without_latency(value: Any) -> Any:
    """``value`` with every measured duration left out (they differ run to run)."""
    if isinstance(value, dict):
        return {k: without_latency(v) for k, v in value.items() if "latency" not in k}
    if isinstance(value, list):
        return [without_latency(v) for v in value]
    return value


def history(path: Path) -> dict[str, Any]:
    with SqliteStore(path) as store:
        records = store.records(SID, limit=100_000)
        return {
            "cycles": store.cycle_count(SID),
            "fills": store.load_fills(SID),
            "trades": store.load_trades(SID),
            "equity": store.equity_series(SID, max_points=100_000),
            "records": [
                (r.ts, r.kind, r.reference_id, without_latency(r.payload)) for r in records
            ],
        }


def test_500_cycles_on_the_fast_paths_equal_the_per_cycle_paths(tmp_path: Path) -> None:
    request = ema_request()
    run(tmp_path / "slow.db", request, 500, fast=False)
    run(tmp_path / "fast.db", request, 500, fast=True, batch=64)  # 7 full batches and a part
    slow, fast = history(tmp_path / "slow.db"), history(tmp_path / "fast.db")
    assert slow["cycles"] == fast["cycles"] == 500
    assert len(slow["fills"]) > 20  # the rule traded: the comparison means something
    assert len(slow["trades"]) > 5
    for part in ("fills", "trades", "equity", "records"):
        assert fast[part] == slow[part], part


def test_the_fast_paths_are_really_used_and_the_history_is_batched(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "a.db") as store:
        store.create_strategy(ema_request(), now_ms=0, strategy_id=SID)
        runtime = open_runtime(store, SID, fast_replay=True, batch_cycles=10)
        features = runtime.coordinator._features
        assert isinstance(features, ReplayFeatureComputer)
        assert isinstance(runtime.coordinator._data, SeriesCandleSource)
        assert isinstance(runtime.batch, BatchedCycleStore)
        for _ in range(15):
            runtime.step()
        assert store.cycle_count(SID) == 10 and runtime.batch.pending == 5
        assert features.served == 15 * len(SYMBOLS)
        runtime.flush()
        assert store.cycle_count(SID) == 15
        per_cycle = open_runtime(store, SID)  # the default: per-cycle paths, no batch
        assert per_cycle.batch is None and not isinstance(
            per_cycle.coordinator._features, ReplayFeatureComputer
        )


def test_a_replay_makes_the_collector_run_less_often_and_restores_it_after_the_last() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # CPython's default
        first, second = relaxed_collector(), relaxed_collector()  # two replays in threads
        with first:
            assert gc.get_threshold() == (REPLAY_GC_THRESHOLD, 10, 10)
            with second:
                assert gc.get_threshold() == (REPLAY_GC_THRESHOLD, 10, 10)
            assert gc.get_threshold() == (REPLAY_GC_THRESHOLD, 10, 10)  # one still runs
        assert gc.get_threshold() == (700, 10, 10)  # the last one ended
        gc.set_threshold(50_000, 5, 5)
        with relaxed_collector():  # a higher threshold is kept
            assert gc.get_threshold() == (50_000, 5, 5)
        assert gc.get_threshold() == (50_000, 5, 5)
        gc.set_threshold(0)
        with relaxed_collector():  # a disabled collector stays disabled
            assert gc.get_threshold()[0] == 0
        gc.set_threshold(700, 10, 10)
        with relaxed_collector():
            gc.set_threshold(1_000, 10, 10)  # changed by something else meanwhile: kept
        assert gc.get_threshold() == (1_000, 10, 10)
    finally:
        gc.set_threshold(*saved)


def test_a_backtest_run_steps_with_the_relaxed_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strategy_agent.backtest import driver

    seen: list[int] = []
    step = StrategyRuntime.step

    def watched(runtime: StrategyRuntime) -> Any:
        seen.append(gc.get_threshold()[0])
        return step(runtime)

    monkeypatch.setattr(StrategyRuntime, "step", watched)
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        entry = driver.ConfigEntry("ema", ema_request())
        plan = driver.plan_backtest([entry], from_ms=START_MS, to_ms=START_MS + 5 * HOUR_MS)
        driver.run_backtest(plan, tmp_path / "bt.db")
        assert seen and set(seen) == {REPLAY_GC_THRESHOLD}
        assert gc.get_threshold() == (700, 10, 10)  # restored after the run
    finally:
        gc.set_threshold(*saved)


def test_a_crash_loses_the_unwritten_batch_and_the_restart_decides_it_again(
    tmp_path: Path,
) -> None:
    request = ema_request()
    run(tmp_path / "whole.db", request, 120, fast=True, batch=16)
    with SqliteStore(tmp_path / "crash.db") as store:
        store.create_strategy(request, now_ms=0, strategy_id=SID)
        runtime = open_runtime(store, SID, fast_replay=True, batch_cycles=16)
        for _ in range(75):
            runtime.step()
        del runtime  # a crash: the 11 cycles held are lost, 64 are stored
        assert store.cycle_count(SID) == 64
    run(tmp_path / "crash.db", request, 120 - 64, fast=True, batch=16)  # resume from the store
    assert history(tmp_path / "crash.db") == history(tmp_path / "whole.db")


@pytest.fixture
def rsi_llm() -> Iterator[FakeLlmServer]:
    """The fake LLM server answering every request with its RSI demo rule."""
    server = FakeLlmServer(auto_reply=rsi_plan).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(120)
def test_an_llm_replay_from_the_cache_on_the_fast_paths_trades_as_per_cycle(
    tmp_path: Path, rsi_llm: FakeLlmServer
) -> None:
    fake_llm = rsi_llm
    request = UserRequest(
        llm=ModelConfig(
            provider="openai", model_id="fake-rsi", api_base=fake_llm.api_base, cache=True
        ),
        trading=TradingConfig(symbols=SYMBOLS[:2], seed=3),
    )
    cache = tmp_path / "cache.db"
    key = SecretStr("sk-test")
    run(tmp_path / "fill.db", request, 150, fast=False, api_key=key, cache_db=cache)
    asked = len(fake_llm.requests)
    assert asked == 150
    run(tmp_path / "slow.db", request, 150, fast=False, api_key=key, cache_db=cache)
    run(tmp_path / "fast.db", request, 150, fast=True, batch=40, api_key=key, cache_db=cache)
    assert len(fake_llm.requests) == asked  # every reply of both re-runs came from the cache
    slow, fast = history(tmp_path / "slow.db"), history(tmp_path / "fast.db")
    assert len(slow["fills"]) > 3
    for part in ("fills", "trades", "equity", "records"):
        assert fast[part] == slow[part], part


@pytest.mark.timeout(120)
def test_an_llm_replay_hashes_its_prompts_as_the_plain_json_so_old_caches_stay_valid(
    tmp_path: Path, rsi_llm: FakeLlmServer
) -> None:
    """The prompts are hashed incrementally (the system message's part once): every
    cache key and prompt hash must still be the sha256 of the plain ``json.dumps``."""
    request = UserRequest(
        llm=ModelConfig(
            provider="openai", model_id="fake-rsi", api_base=rsi_llm.api_base, cache=True
        ),
        trading=TradingConfig(symbols=SYMBOLS, seed=5),
    )
    cache_db = tmp_path / "cache.db"
    run(
        tmp_path / "a.db",
        request,
        40,
        fast=True,
        batch=16,
        api_key=SecretStr("k"),
        cache_db=cache_db,
    )
    cache = ResponseCache(cache_db)
    with SqliteStore(tmp_path / "a.db") as store:
        composes = store.records(SID, kind="compose", limit=100)
    assert len(composes) == 40 == len(rsi_llm.requests)
    for record in composes:
        prompt = json.dumps(
            record.payload["messages"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        key = json.dumps(["openai/fake-rsi", None, prompt], separators=(",", ":"))
        plain_key = hashlib.sha256(key.encode()).hexdigest()
        meta = record.payload["proposal"][
            "model_meta"
        ]  # the record's "prompt_hash" is the strategy's
        assert meta["prompt_hash"] == hashlib.sha256(prompt.encode()).hexdigest()
        reply = cache.get("openai/fake-rsi", None, [], key=plain_key)
        assert reply is not None and reply.text == record.payload["raw_reply"]
