"""CcxtExecutionGateway against the fake Binance: fills read back, one order per instruction,
crash recovery, partial fills, rejections, reduce-only, dust and the marketable limit."""

from __future__ import annotations

import ccxt
import pytest

from strategy_agent.data.ccxt_exchange import RetryPolicy
from strategy_agent.errors import AuthenticationError
from strategy_agent.execution.ccxt_gateway import CcxtExecutionGateway, GatewayAuthenticationError
from strategy_agent.execution.ccxt_orders import client_order_id
from strategy_agent.execution.fills import fill_from_result
from strategy_agent.models import HistoryRecord
from strategy_agent.trading_history import orders
from strategy_agent.trading_history.store import DuplicateCycle, SqliteStore
from tests.execution.ccxt_helpers import KEY_ENV, SECRET_ENV, STRATEGY, MakeGateway, instruction
from tests.fakes.fake_binance_private import FUTURES_FEE_RATE, SPOT_FEE_RATE, FakeBinancePrivate
from tests.fakes.fake_exchange import FakeExchange

BTC, ETH = "BTC/USDT", "ETH/USDT"
BTC_PERP, ETH_PERP = "BTC/USDT:USDT", "ETH/USDT:USDT"
SPOT_ORDER, SWAP_ORDER = "/api/v3/order", "/fapi/v1/order"


def posts(fake: FakeExchange, path: str = SPOT_ORDER) -> list[dict[str, str]]:
    return [r.params for r in fake.requests_to(path) if r.method == "POST"]


def cid(instruction_id: str) -> str:
    return client_order_id("binance", instruction_id)


# -- fills read back ------------------------------------------------------------------------------


def test_a_market_buy_is_filled_and_read_back_with_its_fee_in_quote(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate, store
):
    buy = instruction(BTC, "buy", 0.01)
    [result] = make_gateway().execute([buy])

    [order] = account.orders
    price = order.trades[0]["price"]
    base_fee = 0.01 * SPOT_FEE_RATE  # Binance takes a spot buy's fee in the coin bought
    assert result.status == "filled" and result.reason is None
    assert result.avg_price == pytest.approx(price)
    assert result.filled_qty == pytest.approx(0.01 - base_fee)  # what the account received
    assert result.fee == pytest.approx(base_fee * price)  # the fee in USDT
    # the ledger's cash moves exactly as the account's USDT did
    spent = 10_000.0 - account.balances["USDT"]
    assert result.filled_qty * result.avg_price + result.fee == pytest.approx(spent)
    assert account.balances["BTC"] == pytest.approx(result.filled_qty)
    # the order went out under the instruction's client id, and is recorded as filled
    assert posts(fake_exchange)[0]["newClientOrderId"] == cid(buy.instruction_id)
    assert posts(fake_exchange)[0]["type"] == "MARKET"
    record = orders.get_order(store, cid(buy.instruction_id))
    assert record is not None and record.status == "filled"
    assert (record.fee, record.fee_currency) == (pytest.approx(base_fee), "BTC")
    assert record.exchange_order_id == str(order.order_id)
    assert fill_from_result(result, STRATEGY).quantity == result.filled_qty


def test_a_swap_fill_reads_its_fee_from_the_trades(
    make_gateway: MakeGateway, account: FakeBinancePrivate, store
):
    [result] = make_gateway("swap").execute([instruction(BTC_PERP, "buy", 0.01)])

    price = account.orders[0].trades[0]["price"]
    assert result.status == "filled"
    assert result.filled_qty == 0.01
    assert result.fee == pytest.approx(0.01 * price * FUTURES_FEE_RATE)  # USDT-M: fee in USDT
    assert account.positions["BTCUSDT"].amount == pytest.approx(0.01)


def test_a_fee_in_a_third_currency_is_recorded_as_is_with_a_note(
    make_gateway: MakeGateway, account: FakeBinancePrivate, store
):
    account.spot_fee_asset = "BNB"
    [result] = make_gateway().execute([instruction(ETH, "sell", 0.5)])

    record = orders.get_order(store, cid(result.instruction_id))
    assert result.status == "filled" and result.filled_qty == 0.5
    assert result.fee == 0.0  # not in USDT: not counted by the ledger
    assert record is not None and record.fee_currency == "BNB" and record.fee > 0
    assert "BNB is not in USDT" in (result.reason or "")


# -- one order per instruction ---------------------------------------------------------------------


def test_a_lost_response_is_looked_up_and_never_sent_twice(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    buy = instruction(BTC, "buy", 0.01)
    fake_exchange.fail("lost_response", SPOT_ORDER)  # accepted, answer lost

    [result] = make_gateway().execute([buy])

    assert result.status == "filled"
    assert len(account.orders_with_client_id(cid(buy.instruction_id))) == 1
    assert len(posts(fake_exchange)) == 1
    lookup = [r for r in fake_exchange.requests_to(SPOT_ORDER) if r.method == "GET"]
    assert lookup and lookup[0].params["origClientOrderId"] == cid(buy.instruction_id)


def test_the_fake_would_take_a_blind_resend_as_a_second_order(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    """Control: Binance accepts a done order's client id again, so only the look-up protects."""
    gateway = make_gateway()
    gateway._session.lookup = lambda client_id, symbol: "absent"  # type: ignore[method-assign]
    buy = instruction(BTC, "buy", 0.01)
    fake_exchange.fail("lost_response", SPOT_ORDER)

    gateway.execute([buy])

    assert len(account.orders_with_client_id(cid(buy.instruction_id))) == 2


@pytest.mark.parametrize("fault", ["network", "rate_limit", "unavailable"])
def test_an_unanswered_send_is_retried_after_the_lookup_finds_nothing(
    make_gateway: MakeGateway,
    fake_exchange: FakeExchange,
    account: FakeBinancePrivate,
    sleeps: list[float],
    fault: str,
):
    buy = instruction(BTC, "buy", 0.01)
    fake_exchange.fail(fault, SPOT_ORDER)  # type: ignore[arg-type]

    [result] = make_gateway().execute([buy])

    assert result.status == "filled"
    assert len(account.orders_with_client_id(cid(buy.instruction_id))) == 1
    methods = [r.method for r in fake_exchange.requests_to(SPOT_ORDER)]
    assert methods == ["POST", "GET", "POST"]  # look-up before the second try
    policy = RetryPolicy()
    assert sleeps == [policy.delay_s(0, rate_limited=fault == "rate_limit")]


def test_an_order_in_doubt_is_left_unknown_then_reconciled_once_after_a_restart(
    make_gateway: MakeGateway,
    fake_exchange: FakeExchange,
    account: FakeBinancePrivate,
    store: SqliteStore,
    db_path,
):
    buy = instruction(BTC, "buy", 0.01)
    fake_exchange.fail("lost_response", SPOT_ORDER)
    fake_exchange.fail("network", SPOT_ORDER, times=10)  # look-ups cannot get through

    [result] = make_gateway().execute([buy])

    assert result.status == "error" and "unknown" in (result.reason or "")
    record = orders.get_order(store, cid(buy.instruction_id))
    assert record is not None and record.status == "unknown"
    assert len(posts(fake_exchange)) == 1  # never re-sent while in doubt

    # restart: a new process, a new connection, the exchange reachable again
    fake_exchange.reset()
    with SqliteStore(db_path) as restarted:
        gateway = make_gateway(store=restarted)
        reconciled = gateway.reconcile()
        assert [r.instruction_id for r in reconciled] == [buy.instruction_id]
        assert reconciled[0].status == "filled"
        assert reconciled[0].filled_qty == pytest.approx(result.requested_qty * (1 - SPOT_FEE_RATE))
        assert not posts(fake_exchange)  # looked up, not re-sent

        fill = fill_from_result(reconciled[0], STRATEGY)
        _write_fill(restarted, fill, cycle=1)
        assert gateway.reconcile() == []  # applied once: not offered again
        with pytest.raises(DuplicateCycle):  # and the database refuses it twice
            _write_fill(restarted, fill, cycle=2)

        # the same instruction again: answered from the records, nothing sent
        [again] = gateway.execute([buy])
        assert again.status == "rejected" and "already executed" in (again.reason or "")
    assert not posts(fake_exchange)
    assert len(account.orders_with_client_id(cid(buy.instruction_id))) == 1


def test_a_crash_between_sending_and_recording_is_reconciled_from_the_exchange(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate, store
):
    gateway = make_gateway()
    real_create = gateway.exchange.create_order

    def create_then_die(*args, **kwargs):
        real_create(*args, **kwargs)
        raise KeyboardInterrupt  # the process dies with the order placed, nothing recorded

    gateway.exchange.create_order = create_then_die
    buy = instruction(BTC, "buy", 0.01)
    with pytest.raises(KeyboardInterrupt):
        gateway.execute([buy])
    record = orders.get_order(store, cid(buy.instruction_id))
    assert record is not None and record.status == "sent"  # recorded before the call

    [reconciled] = make_gateway().reconcile()

    assert reconciled.status == "filled" and reconciled.instruction_id == buy.instruction_id
    assert orders.get_order(store, cid(buy.instruction_id)).status == "filled"
    assert len(account.orders) == 1


def test_an_order_that_never_left_is_recorded_rejected_on_reconcile_and_can_be_sent_again(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate, store
):
    gateway = make_gateway()

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # dies after recording "sent", before the HTTP call

    gateway.exchange.create_order = die
    buy = instruction(BTC, "buy", 0.01)
    with pytest.raises(KeyboardInterrupt):
        gateway.execute([buy])

    assert make_gateway().reconcile() == []
    record = orders.get_order(store, cid(buy.instruction_id))
    assert record is not None and record.status == "rejected"
    assert "never arrived" in (record.reason or "")
    assert account.orders == []


def test_an_unknown_order_is_looked_up_before_the_instruction_is_sent_again(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    buy = instruction(BTC, "buy", 0.01)
    fake_exchange.fail("lost_response", SPOT_ORDER)
    fake_exchange.fail("network", SPOT_ORDER, times=10)
    gateway = make_gateway()
    assert gateway.execute([buy])[0].status == "error"
    fake_exchange.reset()

    [retried] = gateway.execute([buy])  # the coordinator retries the same instruction

    assert retried.status == "filled"
    assert not posts(fake_exchange)
    assert len(account.orders_with_client_id(cid(buy.instruction_id))) == 1


# -- partial fills, rejections, authentication ---------------------------------------------------------


def test_a_partial_fill_is_applied_as_what_it_is(
    make_gateway: MakeGateway, account: FakeBinancePrivate, store
):
    account.partial_fill_next(0.5)
    [result] = make_gateway().execute([instruction(ETH, "sell", 1.0)])

    assert result.status == "filled"
    assert (result.requested_qty, result.filled_qty) == (1.0, 0.5)
    assert "partially filled: 0.5 of 1" in (result.reason or "")
    assert orders.get_order(store, cid(result.instruction_id)).status == "partially_filled"
    assert account.balances["ETH"] == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (-2010, "Account has insufficient balance for requested action.", "insufficient funds"),
        (-1013, "Filter failure: LOT_SIZE", "invalid order"),
        (-2010, "NEW_ORDER_REJECTED", "invalid order"),
    ],
)
def test_a_refusal_is_a_rejected_result_with_the_reason_and_is_not_retried(
    make_gateway: MakeGateway,
    fake_exchange: FakeExchange,
    account: FakeBinancePrivate,
    store,
    code: int,
    message: str,
    kind: str,
):
    account.reject_next(code, message)
    [result] = make_gateway().execute([instruction(BTC, "buy", 0.01)])

    assert result.status == "rejected"
    assert result.reason is not None and result.reason.startswith(kind) and message in result.reason
    assert len(posts(fake_exchange)) == 1
    assert orders.get_order(store, cid(result.instruction_id)).status == "rejected"


def test_a_real_shortfall_is_refused_by_the_exchange_as_insufficient_funds(
    make_gateway: MakeGateway, account: FakeBinancePrivate
):
    [result] = make_gateway().execute([instruction(BTC, "buy", 1.0)])  # ~80,000 USDT

    assert result.status == "rejected" and "insufficient funds" in (result.reason or "")
    assert account.orders == []


def test_a_refused_key_raises_an_authentication_error_naming_the_variables_to_check(
    make_gateway: MakeGateway, account: FakeBinancePrivate, store
):
    account.auth_failure = True  # -2015 from the first private call
    buy = instruction(BTC, "buy", 0.01)

    with pytest.raises(GatewayAuthenticationError) as raised:
        make_gateway().execute([buy])

    message = str(raised.value)
    assert isinstance(raised.value, AuthenticationError)
    assert KEY_ENV in message and SECRET_ENV in message and "paused" in message
    assert raised.value.results == []
    record = orders.get_order(store, cid(buy.instruction_id))
    assert record is not None and record.status == "rejected"


def test_an_authentication_error_mid_batch_keeps_the_results_done_before_it(
    make_gateway: MakeGateway, account: FakeBinancePrivate
):
    gateway = make_gateway()
    real_create = gateway.exchange.create_order
    calls = []

    def refuse_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise ccxt.PermissionDenied("binance key has no trading permission")
        return real_create(*args, **kwargs)

    gateway.exchange.create_order = refuse_second

    with pytest.raises(GatewayAuthenticationError) as raised:
        gateway.execute([instruction(ETH, "sell", 0.1), instruction(BTC, "buy", 0.01)])

    assert [r.status for r in raised.value.results] == ["filled"]
    assert "no trading permission" in str(raised.value)


# -- reduce-only, dust, limits -------------------------------------------------------------------------


def test_a_swap_reduction_is_sent_reduce_only_and_an_opening_is_not(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    account.set_position("BTCUSDT", 0.02, 80_000.0)
    gateway = make_gateway("swap")

    results = gateway.execute(
        [
            instruction(BTC_PERP, "sell", 0.01, target=0.01),  # reduce a long
            instruction(ETH_PERP, "buy", 0.1, target=0.1),  # open
        ]
    )

    assert [r.status for r in results] == ["filled", "filled"]
    sent = posts(fake_exchange, SWAP_ORDER)
    assert sent[0]["reduceOnly"] == "true"
    assert "reduceOnly" not in sent[1]
    assert account.positions["BTCUSDT"].amount == pytest.approx(0.01)


def test_a_flip_and_a_spot_sell_are_never_reduce_only(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    account.set_position("BTCUSDT", 0.01, 80_000.0)
    make_gateway("swap").execute([instruction(BTC_PERP, "sell", 0.02, target=-0.01)])
    make_gateway().execute([instruction(ETH, "sell", 1.0, target=1.0)])

    assert "reduceOnly" not in posts(fake_exchange, SWAP_ORDER)[0]
    assert "reduceOnly" not in posts(fake_exchange, SPOT_ORDER)[0]
    assert account.positions["BTCUSDT"].amount == pytest.approx(-0.01)


def test_the_ledger_position_tells_a_reduction_when_the_instruction_does_not(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    account.set_position("BTCUSDT", 0.02, 80_000.0)
    gateway = make_gateway("swap", position_of={BTC_PERP: 0.02}.get)

    gateway.execute([instruction(BTC_PERP, "sell", 0.02)])

    assert posts(fake_exchange, SWAP_ORDER)[0]["reduceOnly"] == "true"


def test_a_swap_close_below_the_minimum_cost_goes_out_reduce_only(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    account.set_position("BTCUSDT", 0.001, 80_000.0)  # ~80 USDT, below the 100 USDT minimum

    [result] = make_gateway("swap").execute([instruction(BTC_PERP, "sell", 0.001, target=0.0)])

    assert result.status == "filled"
    assert posts(fake_exchange, SWAP_ORDER)[0]["reduceOnly"] == "true"
    assert account.positions["BTCUSDT"].amount == 0


@pytest.mark.parametrize(
    ("market_type", "symbol", "quantity"),
    [
        ("spot", BTC, 0.00002),  # 1.6 USDT, below the 5 USDT minimum cost
        ("swap", ETH_PERP, 0.0004),  # below one lot (0.001)
    ],
)
def test_a_close_below_the_minimum_is_dust_recorded_and_never_sent(
    make_gateway: MakeGateway,
    fake_exchange: FakeExchange,
    store,
    market_type: str,
    symbol: str,
    quantity: float,
):
    close = instruction(symbol, "sell", quantity, target=0.0)
    gateway = make_gateway(market_type)

    [result] = gateway.execute([close])
    [again] = gateway.execute([close])  # the same close again: not retried on the exchange

    assert result.status == "rejected"
    assert (result.reason or "").startswith("dust: below the minimum order size")
    assert again.status == "rejected" and again.reason == result.reason
    record = orders.get_order(store, cid(close.instruction_id))
    assert record is not None and record.dust and record.status == "rejected"
    assert not posts(fake_exchange, SPOT_ORDER) and not posts(fake_exchange, SWAP_ORDER)


def test_an_opening_below_one_lot_is_rejected_but_is_not_dust(make_gateway: MakeGateway, store):
    [result] = make_gateway().execute([instruction(BTC, "buy", 0.000001)])

    assert result.status == "rejected" and "less than one lot" in (result.reason or "")
    assert not orders.get_order(store, cid(result.instruction_id)).dust


def test_without_market_orders_a_marketable_ioc_limit_at_max_slippage_is_sent(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate
):
    gateway = make_gateway()
    gateway.exchange.has["createMarketOrder"] = False

    [result] = gateway.execute([instruction(ETH, "buy", 0.1, max_slippage_bps=20)])

    [sent] = posts(fake_exchange)
    ask = float(gateway.exchange.fetch_ticker(ETH)["ask"])
    assert (sent["type"], sent["timeInForce"]) == ("LIMIT", "IOC")
    assert float(sent["price"]) == pytest.approx(ask * 1.002, abs=0.01)
    assert result.status == "filled" and result.avg_price <= float(sent["price"])


def test_a_limit_that_is_not_marketable_expires_with_nothing_filled(
    make_gateway: MakeGateway, fake_exchange: FakeExchange, account: FakeBinancePrivate, store
):
    [result] = make_gateway().execute(
        [instruction(ETH, "buy", 0.1, price_mode="limit", limit_price=100.0)]
    )

    assert posts(fake_exchange)[0]["timeInForce"] == "IOC"
    assert result.status == "rejected" and "nothing filled" in (result.reason or "")
    assert orders.get_order(store, cid(result.instruction_id)).status == "canceled"
    assert [o.status for o in account.orders] == ["EXPIRED"]


def _write_fill(store: SqliteStore, fill, cycle: int) -> None:
    record = HistoryRecord(
        ts=fill.ts,
        kind="execution",
        reference_id=f"reconcile-{cycle}",
        payload={"cycle": cycle},
        strategy_id=STRATEGY,
    )
    store.write_cycle(STRATEGY, [record], [fill], [], None)


def test_the_gateway_needs_no_live_confirmation_on_testnet(make_gateway: MakeGateway):
    assert isinstance(make_gateway(), CcxtExecutionGateway)


def test_an_unexpected_failure_is_an_error_result_and_the_batch_goes_on(
    make_gateway: MakeGateway, account: FakeBinancePrivate, store
):
    gateway = make_gateway()
    real_create = gateway.exchange.create_order
    calls = []

    def broken_first(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise ValueError("unexpected answer shape")
        return real_create(*args, **kwargs)

    gateway.exchange.create_order = broken_first
    broken, fine = instruction(ETH, "sell", 0.1), instruction(BTC, "buy", 0.01)

    results = gateway.execute([broken, fine])

    assert [r.status for r in results] == ["error", "filled"]
    assert results[0].reason == "ValueError: unexpected answer shape"
    assert orders.get_order(store, cid(broken.instruction_id)).status == "sent"  # to reconcile
