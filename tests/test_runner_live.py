"""A strategy on a real exchange in the background: once per closed candle, Pause at once,
an unreachable exchange at start pauses it with the reason, a finished replay pauses too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.clock import SystemClock
from strategy_agent.models import (
    ExchangeConfig,
    ModelConfig,
    ReplayConfig,
    TradingConfig,
    UserRequest,
)
from strategy_agent.runner import StrategyRunner
from strategy_agent.scheduling import DEFAULT_GRACE_MS
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_exchange import FakeExchange
from tests.test_runner import create, stored, wait_for

HOUR = 3_600_000


@pytest.fixture
def runner(db_path: Path) -> Iterator[StrategyRunner]:
    instance = StrategyRunner(db_path, step_delay_s=0.01)
    yield instance
    instance.shutdown()


@pytest.fixture
def wall_clock_exchange() -> Iterator[FakeExchange]:
    """The fake Binance on the wall clock, so a strategy on the real time finds its candles."""
    fake = FakeExchange(SystemClock()).start()  # type: ignore[arg-type]
    try:
        yield fake
    finally:
        fake.stop()


def live_request(api_url: str, **exchange: object) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        exchange=ExchangeConfig(
            exchange_id="binance", trading_mode="paper", api_url=api_url, **exchange
        ),
        trading=TradingConfig(symbols=["BTC/USDT"], interval="1h", lookback=30),
    )


def test_a_live_strategy_decides_once_then_waits_for_the_next_close_and_pauses_at_once(
    runner: StrategyRunner, db_path: Path, wall_clock_exchange: FakeExchange
) -> None:
    sid = create(db_path, live_request(wall_clock_exchange.base_url))
    runner.start(sid)
    wait_for(lambda: stored(db_path, sid)[2] >= 1)
    report = runner.last_report(sid)
    assert report is not None and report.ok, report and report.error
    # not every 10 ms (the runner's stepped pace): the next decision is after the next close
    due = runner.next_due_ms(sid)
    assert due == (report.ts // HOUR + 1) * HOUR + DEFAULT_GRACE_MS
    time.sleep(0.3)
    assert stored(db_path, sid)[2] == 1
    started = time.monotonic()
    assert runner.pause(sid) == "paused"  # between cycles: at once
    wait_for(lambda: not runner.is_running(sid), timeout_s=2.0)
    assert time.monotonic() - started < 2.0
    assert stored(db_path, sid)[0] == "paused"


def test_an_exchange_unreachable_at_start_pauses_the_strategy_with_the_reason(
    runner: StrategyRunner, db_path: Path, fake_exchange: FakeExchange
) -> None:
    sid = create(db_path, live_request(fake_exchange.base_url))
    fake_exchange.fail("network", times=100)  # every call: markets cannot be loaded
    runner.start(sid)
    wait_for(lambda: stored(db_path, sid)[0] == "paused", timeout_s=30.0)
    _, reason, cycles = stored(db_path, sid)
    assert cycles == 0
    assert reason is not None and "could not be reached" in reason
    assert "press Start to try again" in reason
    assert "Traceback" not in reason


def test_a_replay_that_runs_out_of_candles_pauses_with_the_reason(
    runner: StrategyRunner, db_path: Path, tmp_path: Path
) -> None:
    from tests.test_cli_markets import write_csv

    csv = write_csv(tmp_path / "btc.csv", bars=40)
    request = UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        trading=TradingConfig(symbols=["BTC/USDT"], interval="1h", lookback=30),
        replay=ReplayConfig(source="csv", csv_files={"BTC/USDT": str(csv)}),
    )
    sid = create(db_path, request)
    runner.start(sid)
    wait_for(lambda: stored(db_path, sid)[0] == "paused")
    _, reason, cycles = stored(db_path, sid)
    assert reason is not None and "no candle left" in reason
    # 40 bars, the first decision once 30 have closed plus one: bars 31..40 are decided on
    assert cycles == 40 - 30
    with SqliteStore(db_path) as store:
        assert store.cycle_count(sid) == cycles
