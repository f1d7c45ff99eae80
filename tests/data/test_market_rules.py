"""Market rules: the simulated table, static tables, ccxt conversion, lot rounding."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategy_agent.data.market_rules import (
    SimulatedMarketRules,
    StaticMarketRules,
    round_qty_down,
    rules_from_ccxt_market,
    step_decimals,
)
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import MarketRules

# ccxt's own offline market data (MIT, see the folder's README.md and LICENSE-ccxt.txt).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt_markets"


def _markets(exchange: str) -> dict[str, dict]:
    return json.loads((FIXTURES / f"{exchange}.json").read_text())


# -- simulated and static tables ------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "step", "tick"),
    [
        ("BTC/USDT", 1e-5, 0.01),
        ("ETH/USDT", 1e-4, 0.01),
        ("SOL/USDT", 1e-3, 0.001),
        ("DOGE/USDT", 0.01, 0.0001),
        ("BTC/USDT:USDT", 1e-5, 0.01),
        ("ANYTHING/EUR", 0.01, 0.0001),
    ],
)
def test_simulated_rules(symbol, step, tick):
    rules = SimulatedMarketRules().rules_for(symbol)

    assert rules == MarketRules(
        symbol=symbol, qty_step=step, min_qty=step, min_notional=5.0, price_tick=tick
    )


def test_simulated_rules_refuse_a_blank_symbol():
    with pytest.raises(ConfigurationError, match="blank"):
        SimulatedMarketRules().rules_for("  ")


def test_static_rules_serve_their_table_and_name_an_unknown_symbol():
    btc = MarketRules(symbol="BTC/USDT", qty_step=1e-5, min_notional=5)
    provider = StaticMarketRules({"BTC/USDT": btc})

    assert provider.rules_for("BTC/USDT") is btc
    with pytest.raises(ConfigurationError, match=r"'ETH/USDT'.*known symbols: BTC/USDT"):
        provider.rules_for("ETH/USDT")


# -- ccxt markets (real fixtures) -------------------------------------------------------


def test_okx_markets_convert():
    markets = _markets("okx")

    spot = rules_from_ccxt_market(markets["BTC/USDT"])
    assert spot == MarketRules(
        symbol="BTC/USDT", qty_step=1e-8, min_qty=1e-5, min_notional=0.0, price_tick=0.1
    )
    swap = rules_from_ccxt_market(markets["BTC/USDT:USDT"])
    assert (swap.qty_step, swap.min_qty, swap.contract_size) == (
        markets["BTC/USDT:USDT"]["precision"]["amount"],
        markets["BTC/USDT:USDT"]["limits"]["amount"]["min"],
        0.01,
    )


def test_bybit_markets_convert():
    markets = _markets("bybit")

    spot = rules_from_ccxt_market(markets["BTC/USDT"])
    assert spot == MarketRules(
        symbol="BTC/USDT",
        qty_step=1e-6,
        min_qty=1.1e-5,
        max_qty=83,
        min_notional=5,
        price_tick=0.1,
    )
    doge = rules_from_ccxt_market(markets["DOGE/USDT:USDT"])
    assert (doge.qty_step, doge.min_qty, doge.min_notional, doge.price_tick) == (1, 1, 0, 1e-5)


@pytest.mark.parametrize("exchange", ["okx", "bybit"])
def test_every_spot_and_linear_market_converts_and_the_rest_is_refused(exchange):
    for symbol, market in _markets(exchange).items():
        if market["type"] in ("spot", "swap") and not market.get("inverse"):
            rules = rules_from_ccxt_market(market)
            assert rules.symbol == symbol
            assert rules.qty_step == market["precision"]["amount"]
            assert rules.price_tick == market["precision"]["price"]
        else:
            with pytest.raises(ConfigurationError, match=r"option|inverse"):
                rules_from_ccxt_market(market)


def test_static_rules_from_ccxt_markets_keep_only_convertible_markets():
    provider = StaticMarketRules.from_ccxt_markets(_markets("bybit"))

    assert "ETH/USDT" in provider.symbols()
    assert "BTC/USD:BTC" not in provider.symbols()  # inverse
    assert not any("-" in symbol for symbol in provider.symbols())  # options
    assert provider.rules_for("ETH/USDT").min_notional == 5


def test_decimal_places_precision_mode_reads_binance_fixture():
    rules = rules_from_ccxt_market(_markets("binance")["BTC/USDT"], "decimal_places")

    assert (rules.qty_step, rules.price_tick, rules.min_qty, rules.min_notional) == (
        1e-5,
        0.01,
        1e-5,
        5,
    )


def test_a_dict_that_is_not_a_market_is_refused():
    with pytest.raises(ConfigurationError, match="not a ccxt market"):
        rules_from_ccxt_market({"precision": {"amount": 0.1}})
    with pytest.raises(ConfigurationError, match=r"precision\.amount"):
        rules_from_ccxt_market({"symbol": "X/USDT", "type": "spot"})


# -- rounding to the lot size ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "step", "expected"),
    [
        (0.3, 0.1, 0.3),
        (0.7 - 0.4, 0.1, 0.3),
        (0.1 + 0.2, 0.1, 0.3),
        (0.123456789, 1e-5, 0.12345),
        (1.0, 0.25, 1.0),
        (0.99, 0.25, 0.75),
        (4.0, 10.0, 0.0),
        (123.0, 5.0, 120.0),
        (-0.37, 0.1, -0.3),
        (2.3, 1e-8, 2.3),
        (0.29999, 0.1, 0.2),
        (10.07, 1e-8, 10.07),
    ],
)
def test_round_qty_down_examples(qty, step, expected):
    assert round_qty_down(qty, step) == expected


def test_round_qty_down_refuses_nonsense():
    for step in (0.0, -0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="step"):
            round_qty_down(1.0, step)
    with pytest.raises(ValueError, match="qty"):
        round_qty_down(math.nan, 0.1)


def test_step_decimals():
    assert [step_decimals(s) for s in (1e-5, 0.25, 0.1, 1.0, 10.0, 1e-8)] == [5, 2, 1, 0, 0, 8]


@given(
    qty=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    step=st.sampled_from([1e-8, 1e-5, 1e-3, 0.01, 0.1, 0.25, 1.0, 5.0]),
)
def test_round_qty_down_is_a_whole_number_of_steps_below_the_qty(qty, step):
    rounded = round_qty_down(qty, step)
    slack = 1e-9 * max(step, qty)

    assert rounded <= qty + slack
    assert qty - rounded < step + slack
    assert math.isclose(rounded / step, round(rounded / step), abs_tol=1e-6)
    assert round_qty_down(rounded, step) == rounded


def test_round_qty_down_agrees_with_ccxt_truncation():
    import ccxt  # a runtime dependency; imported here because it is slow to import

    markets = _markets("okx")
    exchange = ccxt.okx()
    exchange.set_markets(list(markets.values()))
    for symbol in ("BTC/USDT", "ETH/USDT", "DOGE/USDT", "BTC/USDT:USDT"):
        step = rules_from_ccxt_market(markets[symbol]).qty_step
        for qty in (0.123456789, 1.5, 3.3, 10.07, 1234.5678):
            assert round_qty_down(qty, step) == float(exchange.amount_to_precision(symbol, qty))
