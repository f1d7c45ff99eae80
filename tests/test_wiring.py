"""The ports chosen from the config: per exchange id and trading mode, in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.data.candle_csv import read_candle_csv
from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS, SimulatedMarketDataSource
from strategy_agent.errors import ConfigurationError
from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway
from strategy_agent.execution.fill_prices import ClosePrices, NextOpenPrices
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
from tests.backtest.helpers import H, write_gapped_csv
from tests.execution.ccxt_helpers import KEY, KEY_ENV, SECRET, SECRET_ENV
from tests.fakes.fake_binance_private import FakeBinancePrivate
from tests.fakes.fake_exchange import FakeExchange
from tests.test_cli_markets import write_csv


@pytest.mark.parametrize(
    ("fill_at", "prices"), [("next_open", NextOpenPrices), ("close", ClosePrices)]
)
def test_the_simulated_market_is_stepped_with_its_fill_rule_and_a_fast_pace(
    db_path: Path, fill_at: str, prices: type
) -> None:
    store = SqliteStore(db_path)
    request = UserRequest(exchange=ExchangeConfig(fill_at=fill_at))  # type: ignore[arg-type]
    runtime = open_runtime(store, store.create_strategy(request, 0))
    assert runtime.ports is not None and not runtime.ports.is_live
    assert isinstance(runtime.ports.data, SimulatedMarketDataSource)
    assert isinstance(runtime.ports.clock, ManualClock) and runtime.ports.stepped is runtime.clock
    assert isinstance(runtime.rules, SimulatedMarketRules)
    assert isinstance(runtime.ports.fill_prices, prices)
    assert isinstance(runtime.coordinator._gateway, PaperExecutionGateway)
    assert isinstance(runtime.scheduler(0.5), FixedPaceScheduler)
    assert runtime.coordinator._quotes is None and runtime.coordinator._funding is None
    store.close()


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_a_csv_replay_is_stepped_on_its_candles_and_fills_by_its_rule(
    db_path: Path, tmp_path: Path, fill_at: str
) -> None:
    csv = write_gapped_csv(tmp_path / "btc.csv", bars=50)  # every open gaps from the last close
    request = UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        exchange=ExchangeConfig(fill_at=fill_at, slippage_bps=0),  # type: ignore[arg-type]
        trading=TradingConfig(symbols=["BTC/USDT"], lookback=30),
        replay=ReplayConfig(source="csv", csv_files={"BTC/USDT": str(csv)}),
    )
    with SqliteStore(db_path) as store:
        runtime = open_runtime(store, store.create_strategy(request, 0))
        assert isinstance(runtime.ports.data, ReplayMarketDataSource)  # type: ignore[union-attr]
        report = runtime.step()
    assert report.ok and not runtime.ports.is_live  # type: ignore[union-attr]
    [filled] = report.executions
    candles = read_candle_csv(csv, "1h").set_index("ts")
    decided_on = int(runtime.coordinator._last_candles["BTC/USDT"]["ts"])
    assert decided_on + H == report.ts  # the decision saw the candle that closed at its time
    if fill_at == "next_open":  # the candle after the decision: open at the cycle's time
        assert filled.price_source == "next_open"
        assert filled.reference_price == candles.loc[report.ts, "open"]
        assert candles.loc[report.ts, "open"] != candles.loc[decided_on, "close"]
    else:
        assert filled.price_source == "close"
        assert filled.reference_price == candles.loc[decided_on, "close"]
    assert filled.avg_price == filled.reference_price  # no slippage set


def test_a_replay_order_after_the_last_candle_is_not_filled(db_path: Path, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "btc.csv", bars=33)
    request = UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        trading=TradingConfig(symbols=["BTC/USDT"], lookback=30),
        # the first decision on the close of the last candle (open time 32 h)
        replay=ReplayConfig(
            source="csv", csv_files={"BTC/USDT": str(csv)}, start_ms=DEFAULT_ORIGIN_MS + 33 * H
        ),
    )
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(request, 0)
        runtime = open_runtime(store, sid)
        report = runtime.step()  # decides on the last candle: no candle after it
        assert runtime.exhausted()
        assert store.load_fills(sid) == []
        (execution,) = store.records(sid, kind="execution", limit=1)
    [result] = report.executions
    assert result.status == "rejected" and result.filled_qty == 0
    assert "not filled" in (result.reason or "") and "end of the data" in (result.reason or "")
    assert execution.payload["results"][0]["reason"] == result.reason


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
