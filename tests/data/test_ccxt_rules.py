"""CcxtMarketRules on recorded load_markets() output: TICK_SIZE (okx, bybit), DECIMAL_PLACES (binance)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from strategy_agent.data.ccxt_rules import CcxtMarketRules
from strategy_agent.data.market_rules import round_qty_down
from strategy_agent.errors import ConfigurationError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt_markets"
# (exchange, ccxt precision mode of the recording)
RECORDINGS = [("okx", ccxt.TICK_SIZE), ("bybit", ccxt.TICK_SIZE), ("binance", ccxt.DECIMAL_PLACES)]


def _markets(exchange_id: str) -> dict[str, dict]:
    return json.loads((FIXTURES / f"{exchange_id}.json").read_text())


def _rules(exchange_id: str) -> CcxtMarketRules:
    mode = dict(RECORDINGS)[exchange_id]
    return CcxtMarketRules.from_markets(exchange_id, _markets(exchange_id), precision_mode=mode)


RULES = {exchange_id: _rules(exchange_id) for exchange_id, _ in RECORDINGS}


def test_precision_modes_are_read_from_the_exchange():
    assert RULES["okx"].precision_mode == "tick_size"
    assert RULES["binance"].precision_mode == "decimal_places"


def test_decimal_places_market_becomes_a_step():
    btc = RULES["binance"].rules_for("BTC/USDT")  # precision.amount 5 (decimals), price 2

    assert (btc.qty_step, btc.price_tick, btc.min_qty, btc.min_notional) == (1e-5, 0.01, 1e-5, 5)
    doge = RULES["binance"].rules_for("DOGE/USDT")  # precision.amount 0: whole coins
    assert (doge.qty_step, doge.min_qty) == (1.0, 1.0)


def test_tick_size_markets_with_contract_sizes():
    okx = RULES["okx"]

    swap = okx.rules_for("ETH/USDT:USDT")
    assert (swap.qty_step, swap.min_qty, swap.contract_size) == (0.1, 0.1, 0.1)
    assert okx.kind("ETH/USDT:USDT") == "swap"
    assert okx.kind("ETH/USDT") == "spot"
    spot = RULES["bybit"].rules_for("BTC/USDT")
    assert (spot.qty_step, spot.min_qty, spot.max_qty, spot.min_notional) == (1e-6, 1.1e-5, 83, 5)


@pytest.mark.parametrize(
    ("exchange_id", "symbol"),
    [("okx", "BTC/USD:BTC"), ("bybit", "LTC/USD:LTC"), ("binance", "BTC/USD:BTC")],
)
def test_inverse_contracts_are_refused_with_the_reason(exchange_id, symbol):
    with pytest.raises(ConfigurationError, match=rf"{symbol} is an inverse contract .*settled in"):
        RULES[exchange_id].rules_for(symbol)


def test_options_are_refused_and_unknown_symbols_named():
    with pytest.raises(ConfigurationError, match="is an option market"):
        RULES["okx"].rules_for("BTC/USD:BTC-241227-60000-P")
    with pytest.raises(ConfigurationError, match=r"'SOL/USDT' is not a market on okx"):
        RULES["okx"].rules_for("SOL/USDT")


def test_symbols_lists_spot_and_linear_swaps_only():
    symbols = RULES["okx"].symbols()

    assert "BTC/USDT" in symbols and "SUSHI/USDT:USDT" in symbols
    assert "BTC/USD:BTC" not in symbols
    assert not any(s.count("-") for s in symbols)


def _tradable(exchange_id: str) -> list[str]:
    return RULES[exchange_id].symbols()


CASES = [
    (exchange_id, symbol) for exchange_id, _ in RECORDINGS for symbol in _tradable(exchange_id)
]


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CASES), quantity=st.floats(min_value=0, max_value=1e5, allow_nan=False))
@example(case=("okx", "ADA/USDT:USDT"), quantity=1.999999999985448)  # float noise below 2.0
@example(case=("bybit", "TRX/USDT"), quantity=65536.99999999999)
@example(case=("binance", "BTC/USDT"), quantity=0.7 - 0.4)
def test_rounding_agrees_with_ccxt_decimal_to_precision(case, quantity):
    exchange_id, symbol = case
    rules = RULES[exchange_id]
    market = _markets(exchange_id)[symbol]
    mode = dict(RECORDINGS)[exchange_id]

    oracle = float(
        ccxt.decimal_to_precision(
            quantity,
            rounding_mode=ccxt.TRUNCATE,
            precision=market["precision"]["amount"],
            counting_mode=mode,
            padding_mode=ccxt.NO_PADDING,
        )
    )

    assert rules.amount_to_precision(symbol, quantity) == oracle
    assert rules.amount_to_precision(symbol, -quantity) == -oracle
    # The guardrails' lot arithmetic on the converted step gives the same lot, except that
    # it forgives float noise (a quantity within 1e-9 of a step below a multiple is that
    # multiple: 0.7 - 0.4 is 0.3), where ccxt truncates to the step below.
    step = rules.rules_for(symbol).qty_step
    ours = round_qty_down(quantity, step)
    shortfall = Decimal(repr(ours)) - Decimal(repr(quantity))  # as round_qty_down counts it
    forgiven = 0 < shortfall <= Decimal("1e-9") * Decimal(repr(step))
    assert ours == oracle or (forgiven and math.isclose(ours - oracle, step))


def test_below_one_step_rounds_to_zero_instead_of_raising():
    assert RULES["binance"].amount_to_precision("BTC/USDT", 0.000004) == 0.0
    assert RULES["okx"].amount_to_precision("BTC/USDT:USDT", 0.05) == 0.0


@pytest.mark.parametrize(
    ("exchange_id", "symbol", "quantity", "price", "problem"),
    [
        (
            "binance",
            "BTC/USDT",
            0.0001,
            40_000,
            "order cost 4 USDT is below the minimum cost 5 USDT",
        ),
        ("binance", "BTC/USDT", 0.0001, 60_000, None),
        ("binance", "BTC/USDT", 0.000123, 60_000, "not a multiple of the lot size 1e-05"),
        ("bybit", "BTC/USDT", 0.00001, 1_000_000, "below the minimum amount 1.1e-05"),
        ("bybit", "BTC/USDT", 84, 10, "above the maximum amount 83"),
        ("okx", "ETH/USDT:USDT", 0.1, 100, None),  # 0.1 contracts x 0.1 ETH: no cost minimum
        ("okx", "ETH/USDT:USDT", 0.05, 3000, "not a multiple of the lot size 0.1"),
    ],
)
def test_order_problems(exchange_id, symbol, quantity, price, problem):
    found = RULES[exchange_id].order_problem(symbol, quantity, price)

    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_minimum_cost_counts_the_contract_size():
    # binance BTC/USDT:USDT: min cost 5 USDT, contract size 1; 0.001 x 4000 = 4 USDT
    assert "minimum cost 5 USDT" in (
        RULES["binance"].order_problem("BTC/USDT:USDT", 0.001, 4000) or ""
    )
    assert RULES["binance"].order_problem("BTC/USDT:USDT", 0.002, 4000) is None
