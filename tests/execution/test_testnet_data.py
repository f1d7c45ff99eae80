"""A testnet strategy decides on its sandbox's public candles where ccxt's sandbox serves them
(binance, okx, bybit), else on the live market's; paper strategies read the live market."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.data.ccxt_market import CcxtMarketDataSource
from strategy_agent.execution.ccxt_account import create_sandbox_data_exchange
from strategy_agent.factory import open_runtime
from strategy_agent.models import ExchangeConfig
from strategy_agent.trading_history.store import SqliteStore
from tests.execution.test_exchange_account import exchange_request
from tests.fakes.fake_binance_private import FakeBinancePrivate
from tests.fakes.fake_exchange import FakeExchange


def data_exchange(db_path: Path, fake: FakeExchange, mode: str) -> CcxtMarketDataSource:
    request = exchange_request(fake, ["BTC/USDT"])
    request = request.model_copy(
        update={"exchange": request.exchange.model_copy(update={"trading_mode": mode})}
    )
    with SqliteStore(db_path) as store:
        runtime = open_runtime(store, store.create_strategy(request, 0), clock=fake.clock)
    assert runtime.ports is not None and isinstance(runtime.ports.data, CcxtMarketDataSource)
    return runtime.ports.data


def test_a_binance_testnet_strategy_reads_the_sandbox_candles(
    db_path: Path, fake_exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.execution.ccxt_helpers import KEY, KEY_ENV, SECRET, SECRET_ENV

    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    FakeBinancePrivate(fake_exchange)
    testnet = data_exchange(db_path, fake_exchange, "testnet").exchange
    assert testnet.options.get("sandboxMode") is True
    assert testnet.urls["api"]["public"] == f"{fake_exchange.base_url}/api/v3"  # still the fake
    paper = data_exchange(db_path, fake_exchange, "paper").exchange
    assert not paper.options.get("sandboxMode")


def test_okx_sandbox_marks_every_call_including_candles_as_demo_trading() -> None:
    exchange = create_sandbox_data_exchange(
        ExchangeConfig(exchange_id="okx", trading_mode="testnet")
    )
    assert exchange is not None and exchange.headers.get("x-simulated-trading") == "1"


def test_an_exchange_whose_sandbox_has_no_public_urls_decides_on_live_candles() -> None:
    config = ExchangeConfig(exchange_id="poloniex", trading_mode="testnet")
    assert create_sandbox_data_exchange(config) is None
