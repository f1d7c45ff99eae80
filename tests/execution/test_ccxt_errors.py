"""ccxt's exceptions translated at the gateway's boundary, one class at a time."""

from __future__ import annotations

import ccxt
import pytest

from strategy_agent.data.ccxt_exchange import RetryPolicy
from strategy_agent.errors import AuthenticationError
from strategy_agent.execution.ccxt_gateway import GatewayAuthenticationError
from strategy_agent.execution.ccxt_orders import client_order_id
from strategy_agent.trading_history import orders
from tests.execution.ccxt_helpers import KEY, KEY_ENV, SECRET_ENV, MakeGateway, instruction
from tests.fakes.fake_binance_private import FakeBinancePrivate

BTC = "BTC/USDT"

REFUSALS = [
    (ccxt.InsufficientFunds, "insufficient funds"),
    (ccxt.InvalidOrder, "invalid order"),
    (ccxt.OrderImmediatelyFillable, "invalid order"),
    (ccxt.ContractUnavailable, "invalid order"),
    (ccxt.BadRequest, "refused by the exchange"),
    (ccxt.BadSymbol, "refused by the exchange"),
    (ccxt.OperationRejected, "refused by the exchange"),
    (ccxt.NotSupported, "refused by the exchange"),
    (ccxt.ExchangeError, "refused by the exchange"),
]
IN_DOUBT = [
    ccxt.NetworkError,
    ccxt.RequestTimeout,
    ccxt.ExchangeNotAvailable,
    ccxt.RateLimitExceeded,
    ccxt.DDoSProtection,
    ccxt.InvalidNonce,
    ccxt.BadResponse,
    ccxt.NullResponse,
    ccxt.OperationFailed,
]
KEY_REFUSALS = [ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended]


def failing_create(gateway, error: Exception, times: int = 1, *, place_first: bool = False):
    """Make the gateway's create_order raise ``error`` ``times`` times, then work."""
    real_create = gateway.exchange.create_order
    calls: list[tuple] = []

    def create(*args, **kwargs):
        calls.append(args)
        if len(calls) <= times:
            if place_first:
                real_create(*args, **kwargs)
            raise error
        return real_create(*args, **kwargs)

    gateway.exchange.create_order = create
    return calls


@pytest.mark.parametrize(("error_class", "kind"), REFUSALS)
def test_a_refusal_class_is_a_rejected_result_with_the_reason(
    make_gateway: MakeGateway, account: FakeBinancePrivate, store, error_class, kind: str
):
    gateway = make_gateway()
    calls = failing_create(gateway, error_class("binance says no"), times=99)

    [result] = gateway.execute([instruction(BTC, "buy", 0.01)])

    assert result.status == "rejected"
    assert result.reason == f"{kind}: binance says no"
    assert len(calls) == 1  # a refusal is never retried
    record = orders.get_order(store, client_order_id("binance", result.instruction_id))
    assert record is not None and (record.status, record.reason) == ("rejected", result.reason)


@pytest.mark.parametrize("error_class", IN_DOUBT)
def test_an_error_in_doubt_is_looked_up_then_retried(
    make_gateway: MakeGateway,
    fake_exchange,
    account: FakeBinancePrivate,
    sleeps: list[float],
    error_class,
):
    gateway = make_gateway()
    calls = failing_create(gateway, error_class("connection reset"))

    [result] = gateway.execute([instruction(BTC, "buy", 0.01)])

    assert result.status == "filled"
    assert len(calls) == 2 and len(account.orders) == 1
    lookups = [r for r in fake_exchange.requests_to("/api/v3/order") if r.method == "GET"]
    assert len(lookups) == 1
    rate_limited = issubclass(error_class, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
    assert sleeps == [RetryPolicy().delay_s(0, rate_limited)]


@pytest.mark.parametrize("error_class", IN_DOUBT)
def test_an_order_placed_before_an_error_in_doubt_is_found_not_placed_again(
    make_gateway: MakeGateway, account: FakeBinancePrivate, error_class
):
    gateway = make_gateway()
    calls = failing_create(gateway, error_class("read timed out"), place_first=True)

    [result] = gateway.execute([instruction(BTC, "buy", 0.01)])

    assert result.status == "filled"
    assert len(calls) == 1 and len(account.orders) == 1


def test_a_send_that_never_gets_through_ends_unknown_after_the_tries(
    make_gateway: MakeGateway, account: FakeBinancePrivate, store
):
    gateway = make_gateway()
    calls = failing_create(gateway, ccxt.RequestTimeout("timed out"), times=99)

    [result] = gateway.execute([instruction(BTC, "buy", 0.01)])

    assert result.status == "error" and "unknown" in (result.reason or "")
    assert len(calls) == RetryPolicy(attempts=3).attempts
    record = orders.get_order(store, client_order_id("binance", result.instruction_id))
    assert record is not None and record.status == "unknown"
    assert account.orders == []


def test_a_duplicate_client_id_is_looked_up(make_gateway: MakeGateway, account: FakeBinancePrivate):
    gateway = make_gateway()
    failing_create(gateway, ccxt.DuplicateOrderId("duplicate order sent"), place_first=True)

    [result] = gateway.execute([instruction(BTC, "buy", 0.01)])

    assert result.status == "filled" and len(account.orders) == 1


@pytest.mark.parametrize("error_class", KEY_REFUSALS)
def test_a_key_refusal_raises_an_authentication_error_that_names_the_variables(
    make_gateway: MakeGateway, error_class
):
    gateway = make_gateway()
    failing_create(gateway, error_class(f"binance invalid key {KEY}"))

    with pytest.raises(GatewayAuthenticationError) as raised:
        gateway.execute([instruction(BTC, "buy", 0.01)])

    message = str(raised.value)
    assert isinstance(raised.value, AuthenticationError)
    assert KEY_ENV in message and SECRET_ENV in message
    assert KEY not in message and "***" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
