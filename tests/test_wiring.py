"""The ports chosen from the config: per exchange id and trading mode, in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.data.simulated_market import SimulatedMarketDataSource
from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway
from strategy_agent.execution.fill_prices import ClosePrices
from strategy_agent.execution.paper_trading import PaperExecutionGateway
from strategy_agent.factory import open_runtime
from strategy_agent.models import (
    ExchangeConfig,
    ModelConfig,
    ReplayConfig,
    TradingConfig,
    UserRequest,
)
from strategy_agent.scheduling import FixedPaceScheduler
from strategy_agent.trading_history import orders as order_book
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.wiring import unsupported
from tests.execution.ccxt_helpers import KEY, KEY_ENV, SECRET, SECRET_ENV
from tests.fakes.fake_binance_private import FakeBinancePrivate
from tests.fakes.fake_exchange import FakeExchange
from tests.test_cli_markets import write_csv


def test_the_simulated_market_is_stepped_with_close_fills_and_a_fast_pace(db_path: Path) -> None:
    store = SqliteStore(db_path)
    runtime = open_runtime(store, store.create_strategy(UserRequest(), 0))
    assert runtime.ports is not None and not runtime.ports.is_live
    assert isinstance(runtime.ports.data, SimulatedMarketDataSource)
    assert isinstance(runtime.ports.clock, ManualClock) and runtime.ports.stepped is runtime.clock
    assert isinstance(runtime.rules, SimulatedMarketRules)
    assert isinstance(runtime.ports.fill_prices, ClosePrices)
    assert isinstance(runtime.coordinator._gateway, PaperExecutionGateway)
    assert isinstance(runtime.scheduler(0.5), FixedPaceScheduler)
    assert runtime.coordinator._quotes is None and runtime.coordinator._funding is None
    store.close()


def test_a_csv_replay_is_stepped_on_its_candles(db_path: Path, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "btc.csv", bars=50)
    request = UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        trading=TradingConfig(symbols=["BTC/USDT"], lookback=30),
        replay=ReplayConfig(source="csv", csv_files={"BTC/USDT": str(csv)}),
    )
    with SqliteStore(db_path) as store:
        runtime = open_runtime(store, store.create_strategy(request, 0))
        assert isinstance(runtime.ports.data, ReplayMarketDataSource)  # type: ignore[union-attr]
        report = runtime.step()
    assert report.ok and not runtime.ports.is_live  # type: ignore[union-attr]
    assert report.executions and report.executions[0].price_source == "close"


def test_checks_before_storing_need_no_network() -> None:
    # the tests refuse every non-loopback connection: none is attempted here
    okx = UserRequest(exchange=ExchangeConfig(exchange_id="okx"))
    assert unsupported(okx) is None
    swap = okx.model_copy(update={"trading": TradingConfig(symbols=["btc-usdt-swap"])})
    assert unsupported(swap) == (
        "trading.symbols",
        "'btc-usdt-swap' is not a symbol in ccxt's notation: write BASE/QUOTE in capitals, "
        "e.g. 'BTC/USDT' (spot) or 'BTC/USDT:USDT' (USDT-settled swap)",
    )
    replay_live = okx.model_copy(
        update={
            "exchange": ExchangeConfig(exchange_id="okx", trading_mode="live"),
            "replay": ReplayConfig(),
        }
    )
    assert unsupported(replay_live) == (
        "exchange.trading_mode",
        'a replay trades on paper only (trading_mode = "paper")',
    )


def test_testnet_sends_real_orders_through_the_ccxt_gateway(
    db_path: Path, fake_exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeBinancePrivate(fake_exchange)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    request = UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        exchange=ExchangeConfig(
            exchange_id="binance",
            trading_mode="testnet",
            api_key_env=KEY_ENV,
            secret_key_env=SECRET_ENV,
            api_url=fake_exchange.base_url,
        ),
        trading=TradingConfig(symbols=["BTC/USDT"], lookback=48),
    )
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(request, 0)
        runtime = open_runtime(store, sid, clock=fake_exchange.clock)
        assert isinstance(runtime.coordinator._gateway, CcxtExecutionGateway)
        report = runtime.step()
        assert report.ok, report.error
        [filled] = [r for r in report.executions if r.status == "filled"]
        assert filled.symbol == "BTC/USDT" and filled.side == "buy"
        [order] = order_book.orders_of(store, sid)
        assert order.status == "filled"
        assert [f.instruction_id for f in store.load_fills(sid)] == [filled.instruction_id]

        live = request.model_copy(
            update={"exchange": request.exchange.model_copy(update={"trading_mode": "live"})}
        )
        other = store.create_strategy(live, 0)
        with pytest.raises(ConfigurationError, match="--i-understand-live-trading"):
            open_runtime(store, other, clock=fake_exchange.clock)
