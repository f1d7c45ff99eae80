"""Testnet strategies end to end against the fake Binance: the portfolio view read from the
account (its cash, its quantities, only the strategy's symbols), manual changes recorded and
followed, a crash between sending and recording reconciled once on restart, a refused key
pausing the strategy with the key to check, and dust shown and never retried."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strategy_agent.clock import SystemClock
from strategy_agent.core import StrategyPaused
from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway
from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.models import ExchangeConfig, ModelConfig, TradingConfig, UserRequest
from strategy_agent.runner import StrategyRunner
from strategy_agent.trading_history import orders as order_book
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views.portfolio import DUST_NOTE, positions_table
from tests.execution.ccxt_helpers import KEY, KEY_ENV, SECRET, SECRET_ENV
from tests.fakes.fake_binance_private import FakeBinancePrivate
from tests.fakes.fake_exchange import FakeExchange
from tests.test_runner import stored, wait_for

HOUR = 3_600_000
BTC, ETH = "BTC/USDT", "ETH/USDT"
BTC_PERP = "BTC/USDT:USDT"
SPOT_ORDER = "/api/v3/order"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)


def exchange_request(
    fake: FakeExchange, symbols: list[str], market_type: str = "spot", **trading: Any
) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        exchange=ExchangeConfig(
            exchange_id="binance",
            trading_mode="testnet",
            market_type=market_type,  # type: ignore[arg-type]
            api_key_env=KEY_ENV,
            secret_key_env=SECRET_ENV,
            api_url=fake.base_url,
        ),
        trading=TradingConfig(symbols=symbols, lookback=48, **trading),
    )


def open_testnet(store: SqliteStore, sid: str, fake: FakeExchange) -> StrategyRuntime:
    runtime = open_runtime(store, sid, clock=fake.clock)
    gateway = runtime.coordinator._gateway
    assert isinstance(gateway, CcxtExecutionGateway)
    return runtime


def next_hour(fake: FakeExchange) -> None:
    fake.clock.advance(HOUR)


def account_records(store: SqliteStore, sid: str) -> list[dict[str, Any]]:
    return [r.payload for r in reversed(store.records(sid, kind="account"))]


def posts(fake: FakeExchange) -> list[dict[str, str]]:
    return [r.params for r in fake.requests_to(SPOT_ORDER) if r.method == "POST"]


# -- end to end --------------------------------------------------------------------------------


def test_a_testnet_strategy_runs_cycles_sized_on_the_account_cash(
    db_path: Path, fake_exchange: FakeExchange, keys: None
) -> None:
    # the account has 1,000 USDT free though the strategy's capital is 10,000
    account = FakeBinancePrivate(fake_exchange, balances={"USDT": 1_000.0, "BTC": 0.0})
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(exchange_request(fake_exchange, [BTC]), 0)
        runtime = open_testnet(store, sid, fake_exchange)
        reports = []
        for _ in range(3):
            reports.append(runtime.step())
            next_hour(fake_exchange)

        assert all(r.ok for r in reports), [r.error for r in reports]
        first = reports[0]
        assert first.context is not None and first.context.portfolio.available_cash == 1_000.0
        [filled] = first.executions
        assert filled.status == "filled", filled.reason  # sized within the account's cash
        assert [o.client_order_id for o in account.orders] == [
            o.client_order_id for o in order_book.orders_of(store, sid)
        ]
        assert len(account.orders) == 1  # then held: one order in three cycles
        assert [f.instruction_id for f in store.load_fills(sid)] == [filled.instruction_id]
        assert runtime.ledger.quantity(BTC) == pytest.approx(account.balances["BTC"])
        assert store.cycle_count(sid) == 3
        # the cash shortfall is recorded once, not every cycle
        [note] = account_records(store, sid)
        assert note["cash"]["exchange_free"] == 1_000.0 and note["cash"]["ledger_available"] > 1_000


def test_the_view_comes_from_the_exchange_and_ignores_other_symbols(
    db_path: Path, fake_exchange: FakeExchange, keys: None
) -> None:
    account = FakeBinancePrivate(fake_exchange)
    price = fake_exchange.last_price("BTC/USDT")
    account.set_position("BTCUSDT", 0.01, price)  # a trade made on the account, not recorded
    account.set_position("ETHUSDT", -1.0, 3_000.0)  # another symbol: not the strategy's
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(exchange_request(fake_exchange, [BTC_PERP], "swap"), 0)
        runtime = open_testnet(store, sid, fake_exchange)
        report = runtime.step()

        assert report.ok, report.error
        assert report.context is not None
        view = report.context.portfolio
        assert list(view.positions) == [BTC_PERP]
        assert view.positions[BTC_PERP].quantity == pytest.approx(0.01)
        assert [r for r in report.executions] == []  # buy and hold: it already holds
        assert account.orders == []
        assert account.positions["ETHUSDT"].amount == -1.0  # never touched
        [record] = account_records(store, sid)
        [difference] = record["differences"]
        assert difference["symbol"] == BTC_PERP
        assert (difference["ledger_qty"], difference["exchange_qty"]) == (0.0, pytest.approx(0.01))
        assert runtime.ledger.quantity(BTC_PERP) == pytest.approx(0.01)
        [adjustment] = store.load_fills(sid)
        assert adjustment.instruction_id.endswith(f":account:{BTC_PERP}")


def test_a_manual_sale_on_the_account_is_recorded_and_followed(
    db_path: Path, fake_exchange: FakeExchange, keys: None
) -> None:
    account = FakeBinancePrivate(fake_exchange)  # 10,000 USDT and 2 ETH of the trader's
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(exchange_request(fake_exchange, [BTC, ETH]), 0)
        runtime = open_testnet(store, sid, fake_exchange)
        first = runtime.step()
        assert first.ok, first.error
        bought = runtime.ledger.quantity(BTC)
        eth_bought = runtime.ledger.quantity(ETH)
        assert bought > 0 and eth_bought > 0
        assert account.balances["ETH"] == pytest.approx(2.0 + eth_bought)

        account.balances["BTC"] = bought / 2  # the trader sells half by hand
        next_hour(fake_exchange)
        second = runtime.step()

        assert second.ok, second.error
        assert second.context is not None
        view = second.context.portfolio
        assert view.positions[BTC].quantity == pytest.approx(bought / 2)
        assert view.positions[ETH].quantity == pytest.approx(eth_bought)  # not the trader's 2
        assert runtime.ledger.quantity(BTC) == pytest.approx(bought / 2)
        [record] = [r for r in account_records(store, sid) if "differences" in r]
        [difference] = record["differences"]
        assert difference["symbol"] == BTC and difference["applied"] is True
        assert difference["adjustment"] == pytest.approx(-bought / 2)
        assert "manual sale" in difference["reason"]
        assert len(account.orders) == 2  # nothing re-bought, nothing of the trader's sold


# -- crash and restart -----------------------------------------------------------------------------


def test_a_response_lost_in_a_crash_is_reconciled_once_on_restart(
    db_path: Path, fake_exchange: FakeExchange, keys: None
) -> None:
    account = FakeBinancePrivate(fake_exchange)
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(exchange_request(fake_exchange, [BTC]), 0)
        runtime = open_testnet(store, sid, fake_exchange)
        gateway = runtime.coordinator._gateway
        assert isinstance(gateway, CcxtExecutionGateway)
        real_create: Callable[..., Any] = gateway.exchange.create_order

        def create_then_die(*args: Any, **kwargs: Any) -> Any:
            real_create(*args, **kwargs)
            raise KeyboardInterrupt  # the process dies: the answer is never recorded

        gateway.exchange.create_order = create_then_die
        with pytest.raises(KeyboardInterrupt):
            runtime.step()
        [sent] = order_book.orders_of(store, sid)
        assert sent.status == "sent" and store.load_fills(sid) == []

    next_hour(fake_exchange)
    with SqliteStore(db_path) as restarted:  # a new process
        runtime = open_testnet(restarted, sid, fake_exchange)
        [settled] = order_book.orders_of(restarted, sid)
        assert settled.status == "filled"  # reconciled when the runtime opened

        report = runtime.close_positions()  # Stop and close: it must sell what was bought

        assert report.ok, report.error
        fills = restarted.load_fills(sid)
        assert fills[0].instruction_id == settled.instruction_id
        assert [f.side for f in fills] == ["buy", "sell"]
        # what is left is the lot rounding's dust, on the account as in the ledger
        assert runtime.ledger.quantity(BTC) == pytest.approx(account.balances["BTC"])
        assert account.balances["BTC"] < 0.00001
        assert [o.side for o in account.orders] == ["BUY", "SELL"]  # never bought twice
        # the re-run cycle got its own id: its sell never shares one with the lost buy
        assert fills[1].compose_id == f"{sid}-000001-2"
        assert len({f.instruction_id for f in fills}) == 2
        [record] = account_records(restarted, sid)
        assert [r["instruction_id"] for r in record["reconciled"]] == [settled.instruction_id]


# -- a refused key -----------------------------------------------------------------------------------


@pytest.fixture
def wall_clock_exchange() -> Iterator[FakeExchange]:
    """The fake Binance on the wall clock (the runner's strategies run on the real time)."""
    fake = FakeExchange(SystemClock()).start()  # type: ignore[arg-type]
    try:
        yield fake
    finally:
        fake.stop()


def assert_paused_naming_the_key(db_path: Path, sid: str) -> None:
    with SqliteStore(db_path) as store:
        row = store.get_strategy(sid)
        assert row.status == "paused", row.status_reason
        assert row.status_reason is not None
        assert KEY_ENV in row.status_reason and SECRET_ENV in row.status_reason
        assert KEY not in row.status_reason and "Traceback" not in row.status_reason
        [error] = store.records(sid, kind="error")
        assert KEY_ENV in error.payload["error"]


def test_a_refused_key_pauses_the_strategy_naming_the_key(
    db_path: Path, wall_clock_exchange: FakeExchange, keys: None
) -> None:
    account = FakeBinancePrivate(wall_clock_exchange)
    account.auth_failure = True
    with SqliteStore(db_path) as store:
        stepped = store.create_strategy(exchange_request(wall_clock_exchange, [BTC]), 0)
        started = store.create_strategy(exchange_request(wall_clock_exchange, [ETH]), 0)
    runner = StrategyRunner(db_path, step_delay_s=0.01)
    try:
        with pytest.raises(StrategyPaused, match=KEY_ENV):
            runner.step_once(stepped)
        assert_paused_naming_the_key(db_path, stepped)

        runner.start(started)  # in the background: the worker pauses it
        wait_for(lambda: stored(db_path, started)[0] == "paused")
        wait_for(lambda: not runner.is_running(started))
        assert_paused_naming_the_key(db_path, started)
    finally:
        runner.shutdown()


def test_orders_done_before_a_refused_key_are_recorded(
    db_path: Path, fake_exchange: FakeExchange, keys: None
) -> None:
    account = FakeBinancePrivate(fake_exchange)
    create = fake_exchange._routes[("POST", SPOT_ORDER)]

    def refuse_after_the_first(fake: FakeExchange, request: Any) -> Any:
        answer = create(fake, request)
        # the key loses its trading permission right after the first order
        account.reject_next(-2014, "API-key format invalid.", 401)
        return answer

    fake_exchange.route("POST", SPOT_ORDER, refuse_after_the_first)
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(exchange_request(fake_exchange, [BTC, ETH]), 0)
        runtime = open_testnet(store, sid, fake_exchange)
        with pytest.raises(StrategyPaused, match=KEY_ENV):
            runtime.step()

        [order] = account.orders
        [fill] = store.load_fills(sid)
        assert fill.symbol == order.market.symbol and fill.quantity > 0
        assert store.cycle_count(sid) == 1
        [execution] = store.records(sid, kind="execution")
        assert [r["status"] for r in execution.payload["results"]] == ["filled"]
        [error] = store.records(sid, kind="error")
        assert KEY_ENV in error.payload["error"]


# -- dust -------------------------------------------------------------------------------------------


def test_a_leftover_below_the_minimum_is_shown_as_dust_and_its_close_never_retried(
    db_path: Path, fake_exchange: FakeExchange, keys: None
) -> None:
    account = FakeBinancePrivate(fake_exchange)
    with SqliteStore(db_path) as store:
        request = exchange_request(fake_exchange, [BTC])
        sid = store.create_strategy(request, 0)
        runtime = open_testnet(store, sid, fake_exchange)
        assert runtime.step().ok
        account.balances["BTC"] = 0.000003  # below one lot (0.00001): it cannot be sold
        sent = len(order_book.orders_of(store, sid))

        for _ in range(3):  # "Stop and close" cycles: each one proposes the close
            next_hour(fake_exchange)
            report = runtime.close_positions()
            assert report.ok, report.error
            assert report.result is not None and report.result.instructions == []
            [outcome] = report.result.outcomes
            assert outcome.status == "rejected"
            assert outcome.reasons[0].startswith("dust: below the minimum order size")

        assert len(order_book.orders_of(store, sid)) == sent  # nothing sent, nothing recorded
        assert len(account.orders) == 1
        assert runtime.ledger.quantity(BTC) == pytest.approx(0.000003)
        assert store.records(sid, kind="compose", limit=1)[0].payload["dust"] == [BTC]
        table = positions_table(store, sid, request, fake_exchange.clock.now_ms())
        assert list(table["Note"]) == [DUST_NOTE]
