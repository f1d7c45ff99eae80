"""StrategyRuntime: the stepped clock on failure, edits reaching a running strategy, close positions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.core import StrategyHalted, prompt_hash
from strategy_agent.errors import AuthenticationError, DataUnavailableError
from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.models import (
    Candle,
    ExchangeConfig,
    ModelConfig,
    TradingConfig,
    UserRequest,
    interval_ms,
)
from strategy_agent.trading_history.prompt_versions import save_prompt_version
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer

HOUR_MS = interval_ms("1h")
BUY_AND_HOLD = UserRequest(
    llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
    trading=TradingConfig(symbols=["BTC/USDT", "ETH/USDT"], custom_prompt="Buy and hold."),
)


class FailingOnce:
    """Wraps a data source; its next call fails like an unreachable exchange."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.fail_next = True

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        if self.fail_next:
            self.fail_next = False
            raise DataUnavailableError("exchange unreachable")
        return self.source.get_recent_candles(symbols, interval, lookback)

    def available_symbols(self) -> list[str]:
        return self.source.available_symbols()


def opened(
    db_path: Path, request: UserRequest = BUY_AND_HOLD
) -> tuple[StrategyRuntime, SqliteStore, str]:
    store = SqliteStore(db_path)
    sid = store.create_strategy(request, now_ms=0)
    return open_runtime(store, sid), store, sid


def compose_payload(store: SqliteStore, sid: str, compose_id: str) -> dict[str, Any]:
    (record,) = store.records(sid, kind="compose", reference_id=compose_id)
    return record.payload


def edit_trading(db_path: Path, sid: str, now_ms: int, **changes: Any) -> None:
    """Change the stored request from another connection, as the app's page does."""
    with SqliteStore(db_path) as other:
        request = other.get_strategy(sid).request
        trading = request.trading.model_copy(update=changes)
        other.update_request(sid, request.model_copy(update={"trading": trading}), now_ms)


# -- a failed cycle does not move the simulated clock --------------------------------------


def test_a_failed_cycle_leaves_the_clock_so_the_next_decides_on_the_same_candle(
    db_path: Path,
) -> None:
    runtime, _, _ = opened(db_path)
    first = runtime.step()
    assert first.ok
    runtime.coordinator._data = FailingOnce(runtime.coordinator._data)
    failed = runtime.step()
    assert not failed.ok and failed.stage == "data" and failed.ts == first.ts + HOUR_MS
    assert runtime.clock.now_ms() == first.ts
    again = runtime.step()
    assert again.ok and again.cycle == 3
    assert again.ts == failed.ts  # the candle the failed cycle could not decide on


def test_resume_after_a_failed_cycle_starts_from_the_last_successful_one(db_path: Path) -> None:
    runtime, store, sid = opened(db_path)
    first = runtime.step()
    runtime.coordinator._data = FailingOnce(runtime.coordinator._data)
    assert not runtime.step().ok
    resumed = open_runtime(store, sid)
    assert resumed.clock.now_ms() == runtime.clock.now_ms() == first.ts
    assert resumed.coordinator.cycles_done == 2
    after = resumed.step()
    assert after.ok and after.cycle == 3 and after.ts == first.ts + HOUR_MS


def test_a_halted_cycle_puts_the_clock_back(db_path: Path) -> None:
    runtime, _, _ = opened(db_path)
    before = runtime.clock.now_ms()

    class Refused:
        def compose(self, context: Any) -> Any:
            raise AuthenticationError("key refused by provider")

    runtime.coordinator._composer = Refused()  # type: ignore[assignment]
    with pytest.raises(StrategyHalted):
        runtime.step()
    assert runtime.clock.now_ms() == before


# -- edits reach a running strategy ---------------------------------------------------------


def test_a_prompt_saved_between_cycles_is_used_from_the_next_cycle(db_path: Path) -> None:
    runtime, store, sid = opened(db_path)
    first = runtime.step()
    assert first.context is not None and first.context.prompt_text == "Buy and hold."
    payload = compose_payload(store, sid, first.compose_id)
    assert payload["prompt_version"] is None  # the config's text, never saved as a version
    assert payload["prompt_hash"] == prompt_hash("Buy and hold.")

    with SqliteStore(db_path) as lab:  # the Prompt lab saves: a version, then the request
        save_prompt_version(lab, sid, "Hold only ETH.", now_ms=5)
    edit_trading(db_path, sid, 5, custom_prompt="Hold only ETH.")
    second = runtime.step()
    assert second.context is not None and second.context.prompt_text == "Hold only ETH."
    payload = compose_payload(store, sid, second.compose_id)
    assert (payload["prompt_version"], payload["prompt_hash"]) == (1, prompt_hash("Hold only ETH."))
    assert (second.prompt_version, second.prompt_hash) == (1, prompt_hash("Hold only ETH."))

    with SqliteStore(db_path) as lab:
        save_prompt_version(lab, sid, "Hold only BTC.", now_ms=6)
    edit_trading(db_path, sid, 6, custom_prompt="Hold only BTC.")
    third = runtime.step()
    assert compose_payload(store, sid, third.compose_id)["prompt_version"] == 2
    assert third.context is not None and third.context.prompt_text == "Hold only BTC."


def test_an_edit_within_the_same_millisecond_is_still_seen(db_path: Path) -> None:
    runtime, store, sid = opened(db_path)
    runtime.step()
    same_ms = store.get_strategy(sid).updated_ts
    edit_trading(db_path, sid, same_ms, custom_prompt="Sell everything.")
    report = runtime.step()
    assert report.context is not None and report.context.prompt_text == "Sell everything."


def test_an_edited_limit_applies_from_the_next_cycle_on_the_same_book(db_path: Path) -> None:
    runtime, _, sid = opened(db_path)
    runtime.step()
    cash, positions = runtime.ledger.cash, dict(runtime.ledger.positions)
    assert positions, "buy and hold should have bought"
    edit_trading(db_path, sid, 7, max_position_pct=0.1, max_positions=1)
    report = runtime.step()
    assert report.ok and report.context is not None
    assert report.context.constraints is not None
    assert report.context.constraints["max_position_pct"] == 0.1
    assert report.context.constraints["max_positions"] == 1
    assert report.cycle == 2 and report.ts == runtime.clock.now_ms()
    # the rebuilt runtime resumed the same book (buy and hold holds: nothing traded)
    assert runtime.ledger.cash == pytest.approx(cash, abs=1e-9)
    assert set(runtime.ledger.positions) == set(positions)


def test_the_llm_receives_the_prompt_saved_while_it_runs(
    db_path: Path, fake_llm: FakeLlmServer
) -> None:
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="fake-gpt",
            api_base=fake_llm.api_base,
            timeout_s=5,
            cache=False,
        ),
        trading=TradingConfig(symbols=["BTC/USDT"], custom_prompt="Old instructions."),
    )
    store = SqliteStore(db_path)
    sid = store.create_strategy(request, now_ms=0)
    runtime = open_runtime(store, sid, api_key=SecretStr("sk-edit-test-123456"))
    hold = json.dumps({"items": [], "notes": "hold"})
    fake_llm.reply(hold)
    assert runtime.step().ok
    with SqliteStore(db_path) as lab:
        save_prompt_version(lab, sid, "New instructions.", now_ms=3)
    edit_trading(db_path, sid, 3, custom_prompt="New instructions.")
    fake_llm.reply(hold)
    assert runtime.step().ok
    old, new = (json.dumps(r.body) for r in fake_llm.chat_requests)
    assert "Old instructions." in old and "New instructions." not in old
    assert "New instructions." in new and "Old instructions." not in new


# -- close positions --------------------------------------------------------------------------


def _equity_identity(runtime: StrategyRuntime) -> None:
    ledger = runtime.ledger
    capital = runtime.request.trading.initial_capital
    expected = capital + ledger.realized_pnl + ledger.unrealized_pnl - ledger.fees_paid
    assert math.isclose(ledger.equity, expected, rel_tol=1e-12, abs_tol=1e-9)


def test_close_positions_flattens_the_book_through_a_recorded_cycle(db_path: Path) -> None:
    runtime, store, sid = opened(db_path)
    for _ in range(3):
        assert runtime.step().ok
    assert runtime.ledger.positions
    fills_before = len(store.load_fills(sid))

    report = runtime.close_positions()

    assert report.ok and report.cycle == 4
    assert not runtime.ledger.positions
    closing = store.load_fills(sid)[fills_before:]
    assert {f.symbol for f in closing} == {"BTC/USDT", "ETH/USDT"}
    assert all(f.side == "sell" and f.compose_id == report.compose_id for f in closing)
    payload = compose_payload(store, sid, report.compose_id)
    assert payload["notes"] == "closed by user on stop"
    assert payload["policy"] == "flatten"
    assert {o["status"] for o in payload["outcomes"]} == {"accepted"}
    _equity_identity(runtime)
    latest = store.latest_equity(sid)
    assert latest is not None and latest.equity == pytest.approx(runtime.ledger.equity)
    assert latest.gross_exposure == 0
    resumed = open_runtime(store, sid)
    assert not resumed.ledger.positions
    assert resumed.ledger.cash == pytest.approx(runtime.ledger.cash, abs=1e-9)
    # the strategy's own policy is back for the next cycle
    assert compose_payload(store, sid, resumed.step().compose_id)["policy"] == "buy_and_hold"


def test_close_positions_covers_shorts_on_margin(db_path: Path, fake_llm: FakeLlmServer) -> None:
    request = UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="fake-gpt",
            api_base=fake_llm.api_base,
            timeout_s=5,
            cache=False,
        ),
        exchange=ExchangeConfig(market_type="margin"),
        trading=TradingConfig(
            symbols=["BTC/USDT", "ETH/USDT"],
            max_leverage=2,
            max_position_pct=0.5,
            allow_short=True,
        ),
    )
    store = SqliteStore(db_path)
    sid = store.create_strategy(request, now_ms=0)
    runtime = open_runtime(store, sid, api_key=SecretStr("sk-close-test-123456"))
    items = [
        {"instrument": "BTC/USDT", "action": "sell", "target_qty": -0.01, "confidence": 0.9},
        {"instrument": "ETH/USDT", "action": "buy", "target_qty": 0.5, "confidence": 0.9},
    ]
    fake_llm.reply(json.dumps({"items": items, "notes": "hedge"}))
    assert runtime.step().ok
    quantities = {s: p.quantity for s, p in runtime.ledger.positions.items()}
    assert quantities["BTC/USDT"] < 0 < quantities["ETH/USDT"]
    requests_before = len(fake_llm.chat_requests)

    report = runtime.close_positions()

    assert report.ok and not runtime.ledger.positions
    assert len(fake_llm.chat_requests) == requests_before  # the model is not asked
    sides = {e.symbol: e.side for e in report.executions if e.status == "filled"}
    assert sides == {"BTC/USDT": "buy", "ETH/USDT": "sell"}
    _equity_identity(runtime)


def test_close_positions_on_a_flat_book_records_an_empty_plan(db_path: Path) -> None:
    runtime, store, sid = opened(db_path)
    report = runtime.close_positions()
    assert report.ok and report.executions == [] and not runtime.ledger.positions
    assert store.cycle_count(sid) == 1
