"""The shared spending cap: exact totals across threads, a clean stop, the run stored as stopped."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from strategy_agent.backtest.budget import BudgetTracker, Spend
from strategy_agent.factory import open_runtime
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.runs import create_run, finish_run, get_run
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan


def test_the_budget_says_stop_once_reached_and_why() -> None:
    tracker = BudgetTracker(budget_usd=1.0)
    assert tracker.add("a", 1_000, 0.6) and not tracker.should_stop()
    assert tracker.reason() is None
    assert not tracker.add("b", 500, 0.4)  # exactly the budget: reached
    assert tracker.should_stop() and tracker.stop_event.is_set()
    assert tracker.reason() == "budget of $1.00 reached: $1.0000 and 1,500 tokens spent"
    assert tracker.spent("a") == Spend(tokens=1_000, cost_usd=0.6, calls=1)
    assert tracker.spent() == Spend(tokens=1_500, cost_usd=1.0, calls=2)


def test_a_token_budget_stops_too() -> None:
    tracker = BudgetTracker(budget_tokens=2_000)
    assert tracker.add("a", 1_999, None)
    assert not tracker.add("a", 1, None)
    assert tracker.reason() == "token budget of 2,000 reached: $0.0000 and 2,000 tokens spent"
    assert tracker.spent().unpriced_calls == 2


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_budget_must_be_a_positive_amount(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        BudgetTracker(budget_usd=bad)


def test_negative_spend_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        BudgetTracker().add("a", -1, 0.0)


def test_parallel_workers_sum_exactly_and_overshoot_by_at_most_one_cycle_each() -> None:
    workers, cost = 8, 0.001
    unlimited = BudgetTracker()
    capped = BudgetTracker(budget_usd=2.0)
    counts = [0] * workers

    def spend_freely(index: int) -> None:
        for _ in range(1_000):
            unlimited.add(f"w{index}", 10, cost)

    def spend_until_stopped(index: int) -> None:
        while not capped.should_stop():
            counts[index] += 1
            capped.add(f"w{index}", 10, cost)

    for target in (spend_freely, spend_until_stopped):
        threads = [threading.Thread(target=target, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert unlimited.spent().tokens == workers * 1_000 * 10
    assert unlimited.spent().calls == workers * 1_000
    assert unlimited.spent().cost_usd == pytest.approx(workers * 1_000 * cost)
    assert all(unlimited.spent(f"w{i}").tokens == 10_000 for i in range(workers))
    total = capped.spent()
    assert 2.0 - 1e-9 <= total.cost_usd <= 2.0 + workers * cost + 1e-9
    assert total.calls == sum(counts)


def test_a_cycle_from_the_cache_spends_nothing_and_prices_come_from_the_config() -> None:
    tracker = BudgetTracker(budget_usd=10.0)
    cached = {
        "calls": 1,
        "cached_calls": 1,
        "prompt_tokens": 900,
        "completion_tokens": 60,
        "cost_usd": 0.0,
    }
    tracker.add_audit("a", cached)
    assert tracker.spent() == Spend()
    priced = {
        "calls": 1,
        "cached_calls": 0,
        "prompt_tokens": 900,
        "completion_tokens": 100,
        "cost_usd": 0.002,
    }
    tracker.add_audit("a", priced)
    assert tracker.spent() == Spend(tokens=1_000, cost_usd=0.002, calls=1)
    unpriced = {**priced, "cost_usd": None}
    local = ModelConfig(
        provider="openai", model_id="local", input_cost_per_mtok=1.0, output_cost_per_mtok=2.0
    )
    tracker.add_audit("b", unpriced, local)
    assert tracker.spent("b").cost_usd == pytest.approx((900 * 1.0 + 100 * 2.0) / 1e6)
    tracker.add_audit("c", unpriced, ModelConfig(provider="openai", model_id="local"))
    assert tracker.spent("c") == Spend(tokens=1_000, cost_usd=0.0, calls=1, unpriced_calls=1)
    tracker.add_audit("d", {"policy": "builtin"})  # a built-in rule: no call
    assert tracker.spent("d") == Spend()


def test_a_run_over_budget_is_stored_as_stopped_with_what_it_spent(db_path: Path) -> None:
    server = FakeLlmServer(auto_reply=rsi_plan, count_usage=True).start()
    try:
        # an unpriced model with configured prices: about $0.9 a cycle at $1,000 per million
        config = ModelConfig(
            provider="openai",
            model_id="fake-gpt",
            api_base=server.api_base,
            cache=False,
            timeout_s=5,
            input_cost_per_mtok=1_000.0,
            output_cost_per_mtok=1_000.0,
        )
        request = UserRequest(llm=config, trading=TradingConfig(symbols=["BTC/USDT"]))
        store = SqliteStore(db_path)
        sid = store.create_strategy(request, now_ms=0)
        run = create_run(
            store,
            kind="backtest",
            strategy_id=sid,
            request=request,
            data_source="simulated",
            now_ms=1,
        )
        tracker = BudgetTracker(budget_usd=3.0)
        runtime = open_runtime(store, sid, api_key=SecretStr("sk-test"))
        before: list[float] = []
        for _ in range(50):
            if tracker.should_stop():
                break
            before.append(tracker.spent().cost_usd)
            report = runtime.step()
            assert report.ok and report.result is not None
            tracker.add_audit(run.id, report.result.audit, config)
        spent = tracker.spent(run.id)
        finish_run(
            store,
            run.id,
            "stopped",
            now_ms=2,
            reason=tracker.reason(),
            tokens=spent.tokens,
            cost_usd=spent.cost_usd,
        )
    finally:
        server.stop()
    stored = get_run(store, run.id)
    assert stored.status == "stopped" and stored.status_reason is not None
    assert stored.status_reason.startswith("budget of $3.00 reached")
    assert before[-1] < 3.0 <= stored.cost_usd  # stopped at the first cycle that reached it
    assert store.cycle_count(sid) == len(before) < 50
    assert stored.tokens == store.llm_usage(sid)[0]  # no cache: every token was paid for
