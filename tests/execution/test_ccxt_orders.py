"""Client order ids, order plans (reduce-only, dust, marketable limits) on recorded markets,
and orders read back (status, average price, fee in the quote currency)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategy_agent.data.ccxt_rules import CcxtMarketRules
from strategy_agent.execution.ccxt_orders import (
    OrderPlan,
    Refusal,
    client_order_id,
    fee_summary,
    is_reduction,
    outcome_of,
    plan_order,
)
from tests.execution.ccxt_helpers import instruction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt_markets"
BINANCE_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def rules(exchange_id: str, mode: int) -> CcxtMarketRules:
    markets = json.loads((FIXTURES / f"{exchange_id}.json").read_text())
    return CcxtMarketRules.from_markets(exchange_id, markets, precision_mode=mode)


BINANCE = rules("binance", ccxt.DECIMAL_PLACES)  # amount precision as a count of decimals
OKX = rules("okx", ccxt.TICK_SIZE)  # amount precision as a step; swaps of 0.01 BTC per contract


def plan(rules_: CcxtMarketRules, ins, *, swap=False, reduction=False, price=None, market=True):
    return plan_order(
        ins,
        "sa-test",
        rules_,
        swap=swap,
        reduction=reduction,
        price=price,
        market_orders=market,
        max_slippage_bps=50.0,
    )


# -- client order ids ---------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=200))
def test_client_ids_are_deterministic_and_fit_each_exchange(instruction_id: str):
    binance = client_order_id("binance", instruction_id)
    assert binance == client_order_id("binance", instruction_id)
    assert BINANCE_CLIENT_ID.match(binance)
    okx = client_order_id("okx", instruction_id)
    assert okx.isalnum() and len(okx) <= 32
    gate = client_order_id("gate", instruction_id)
    assert gate.startswith("t-") and len(gate) <= 30
    assert len(client_order_id("some-other-exchange", instruction_id)) <= 32


def test_two_instructions_never_share_a_client_id():
    ids = {client_order_id("binance", f"s1-{n:06d}:BTC/USDT:USDT") for n in range(5000)}
    assert len(ids) == 5000


# -- reductions -----------------------------------------------------------------------------------


@given(
    current=st.integers(-10_000, 10_000).filter(bool),
    target=st.integers(-10_000, 10_000),
)
def test_a_reduction_shrinks_the_position_without_flipping_it(current: int, target: int):
    """Positions in thousandths of a contract; the order takes ``current`` to ``target``."""
    if target == current:
        return
    change = (target - current) / 1000
    side = "buy" if change > 0 else "sell"
    ins = instruction("BTC/USDT:USDT", side, abs(change), target=target / 1000)
    same_side = target == 0 or (target > 0) == (current > 0)
    assert is_reduction(ins, None) == (same_side and abs(target) < abs(current))


def test_the_ledger_position_is_used_when_the_instruction_has_no_target():
    sell = instruction("BTC/USDT:USDT", "sell", 1.0)
    assert is_reduction(sell, 2.0)
    assert not is_reduction(sell, -1.0)  # grows a short
    assert not is_reduction(sell, 0.5)  # flips a long
    assert not is_reduction(sell, None)


# -- plans ---------------------------------------------------------------------------------------------


def test_an_opening_is_truncated_to_the_lot_size_with_a_note():
    planned = plan(BINANCE, instruction("BTC/USDT", "buy", 0.123456789))
    assert isinstance(planned, OrderPlan)
    assert (planned.amount, planned.order_type, planned.reduce_only) == (0.12345, "market", False)
    assert planned.params == {"clientOrderId": "sa-test"}
    assert "truncated" in (planned.note or "")


def test_a_swap_reduction_is_reduce_only_even_below_the_minimum_cost():
    close = instruction("BTC/USDT:USDT", "sell", 0.001, target=0.0)
    planned = plan(BINANCE, close, swap=True, reduction=True, price=1_000.0)  # cost 1 < 5
    assert isinstance(planned, OrderPlan)
    assert planned.reduce_only and planned.params["reduceOnly"] is True


@pytest.mark.parametrize(
    ("rules_", "symbol", "quantity", "swap", "price"),
    [
        (BINANCE, "BTC/USDT", 0.00002, False, 80_000.0),  # 1.6 USDT < 5 USDT minimum cost
        (BINANCE, "BTC/USDT", 0.000001, False, 80_000.0),  # below one lot (DECIMAL_PLACES)
        (OKX, "BTC/USDT:USDT", 0.05, True, 80_000.0),  # half a contract: below one lot
        (BINANCE, "BTC/USDT:USDT", 0.0004, True, 80_000.0),  # below the minimum amount
    ],
)
def test_a_close_the_exchange_would_refuse_is_dust(rules_, symbol, quantity, swap, price):
    close = instruction(symbol, "sell", quantity, target=0.0)
    refused = plan(rules_, close, swap=swap, reduction=True, price=price)
    assert isinstance(refused, Refusal) and refused.dust
    assert refused.reason.startswith("dust: below the minimum order size of " + symbol)


def test_a_close_with_a_leftover_below_one_lot_sends_the_lots_and_notes_the_dust():
    close = instruction("BTC/USDT:USDT", "sell", 0.15, target=0.0)
    planned = plan(OKX, close, swap=True, reduction=True, price=80_000.0)
    assert isinstance(planned, OrderPlan)
    assert planned.amount == 0.1 and "(dust)" in (planned.note or "")


def test_without_market_orders_the_order_is_an_ioc_limit_at_the_slippage_cap():
    buy = instruction("BTC/USDT", "buy", 0.01)
    planned = plan(BINANCE, buy, price=80_000.0, market=False)
    assert isinstance(planned, OrderPlan)
    assert (planned.order_type, planned.params["timeInForce"]) == ("limit", "IOC")
    assert planned.price == pytest.approx(80_400.0)  # 50 bps above the ask
    sell = plan(BINANCE, instruction("BTC/USDT", "sell", 0.01), price=80_000.0, market=False)
    assert isinstance(sell, OrderPlan) and sell.price == pytest.approx(79_600.0)
    no_price = plan(BINANCE, buy, price=None, market=False)
    assert isinstance(no_price, Refusal) and "no price" in no_price.reason


# -- orders read back ------------------------------------------------------------------------------------

SPOT = {"symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "contractSize": None}
SWAP = {"symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "contractSize": 0.01}


def test_fees_in_quote_count_as_they_are_and_in_base_at_the_average_price():
    assert fee_summary([{"currency": "USDT", "cost": 0.8}], SPOT, 80_000.0) == (
        0.8,
        "USDT",
        0.8,
        None,
    )
    fee, currency, in_quote, note = fee_summary(
        [{"currency": "BTC", "cost": 0.000005}, {"currency": "BTC", "cost": 0.000005}],
        SPOT,
        80_000.0,
    )
    assert (fee, currency, note) == (pytest.approx(0.00001), "BTC", None)
    assert in_quote == pytest.approx(0.8)


def test_a_fee_in_another_currency_is_kept_with_a_note_and_not_counted():
    fee, currency, in_quote, note = fee_summary([{"currency": "BNB", "cost": 0.0016}], SPOT, 8e4)
    assert (fee, currency, in_quote) == (0.0016, "BNB", 0.0)
    assert note is not None and "0.0016 BNB is not in USDT" in note
    mixed = fee_summary(
        [{"currency": "USDT", "cost": 0.5}, {"currency": "BNB", "cost": 0.001}], SPOT, 8e4
    )
    assert mixed[:3] == (0.5, "USDT", 0.5) and "BNB" in (mixed[3] or "")


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("closed", 1.0, "filled"),
        ("closed", 0.4, "partially_filled"),
        ("expired", 0.4, "partially_filled"),
        ("canceled", 0.0, "canceled"),
        ("expired", 0.0, "canceled"),
        ("rejected", 0.0, "rejected"),
        ("open", 0.2, "acknowledged"),
        (None, 0.0, "acknowledged"),
    ],
)
def test_ccxt_statuses_become_ours(status, filled: float, expected: str):
    order = {"id": 7, "status": status, "amount": 1.0, "filled": filled, "average": 80_000.0}
    assert outcome_of(order, SPOT).status == expected


def test_the_average_price_comes_from_the_cost_when_missing_counting_the_contract_size():
    order = {"id": "9", "status": "closed", "amount": 2.0, "filled": 2.0, "cost": 1_600.0}
    outcome = outcome_of(order, SWAP, trades=[{"fee": {"currency": "USDT", "cost": 0.64}}])
    assert outcome.avg_price == pytest.approx(80_000.0)  # 1600 / (2 contracts x 0.01 BTC)
    assert (outcome.fee_quote, outcome.exchange_order_id) == (pytest.approx(0.64), "9")


def test_a_fill_without_any_fee_says_so():
    outcome = outcome_of(
        {"id": 1, "status": "closed", "amount": 1, "filled": 1, "average": 5}, SPOT
    )
    assert outcome.fee is None and outcome.fee_quote == 0.0
    assert outcome.note == "the exchange reported no fee for this order"
