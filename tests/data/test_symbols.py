"""Symbol validation and market listings, for the simulated market and recorded real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strategy_agent.data.simulated_market import DEFAULT_SYMBOLS, SIMULATED_SYMBOLS
from strategy_agent.data.symbols import list_markets, validate_symbols

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt_markets"
OKX = json.loads((FIXTURES / "okx.json").read_text())
BYBIT = json.loads((FIXTURES / "bybit.json").read_text())


def test_simulated_symbols_are_the_default_pairs_and_their_perpetuals():
    assert set(DEFAULT_SYMBOLS) < set(SIMULATED_SYMBOLS)
    assert "BTC/USDT:USDT" in SIMULATED_SYMBOLS
    assert validate_symbols("simulated", list(SIMULATED_SYMBOLS)) == []


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("FOO/USDT", "'FOO/USDT' is not a market on the simulated market"),
        ("btcusdt", "'btcusdt' is not a symbol in ccxt's notation"),
        ("btc/usdt", "did you mean 'BTC/USDT'?"),
        ("BTCUSDT", "did you mean 'BTC/USDT'?"),
        ("BTC-USDT", "did you mean 'BTC/USDT'?"),
        ("ETH/USTD", "did you mean 'ETH/USDT'"),
        ("", "is not a symbol in ccxt's notation"),
    ],
)
def test_the_simulated_market_refuses_unknown_and_malformed_symbols(symbol, expected):
    problems = validate_symbols("simulated", ["BTC/USDT", symbol])

    assert len(problems) == 1
    assert expected in problems[0]


def test_real_markets_accept_listed_spot_and_linear_swaps():
    assert validate_symbols("okx", ["BTC/USDT", "ETH/USDT:USDT", "SUSHI/USDT:USDT"], OKX) == []


def test_real_markets_refuse_with_reasons():
    problems = validate_symbols(
        "okx",
        ["SOL/USDT", "btcusdt", "BTC/USD:BTC", "BTC/USD:BTC-241227-60000-P"],
        OKX,
    )

    assert problems[0].startswith("'SOL/USDT' is not a market on okx")
    assert "markets --exchange okx" in problems[0]
    assert "did you mean 'BTC/USDT'" in problems[1]
    assert "inverse contract" in problems[2] and "'BTC/USDT:USDT'" in problems[2]
    assert "is an option market" in problems[3]


def test_an_inactive_market_is_refused():
    inactive = {"BTC/USDT": {**OKX["BTC/USDT"], "active": False}}

    assert "inactive" in validate_symbols("okx", ["BTC/USDT"], inactive)[0]


def test_validation_of_a_real_exchange_needs_its_markets():
    with pytest.raises(ValueError, match="needs okx's markets"):
        validate_symbols("okx", ["BTC/USDT"])


def test_list_markets_filters_by_type_and_quote():
    swaps = list_markets("bybit", type="swap", quote="usdt", markets=BYBIT)

    assert [m.symbol for m in swaps] == sorted(
        s for s, m in BYBIT.items() if m["type"] == "swap" and m["quote"] == "USDT"
    )
    btc = next(m for m in swaps if m.symbol == "BTC/USDT:USDT")
    assert (btc.amount_step, btc.min_amount, btc.contract_size, btc.supported) == (
        0.001,
        0.001,
        1,
        True,
    )
    inverse = list_markets("bybit", type="swap", quote="USD", markets=BYBIT)
    assert inverse and all(not m.supported and "inverse" in m.note for m in inverse)


def test_list_markets_of_the_simulated_market():
    listings = list_markets("simulated", type="spot")

    assert [m.symbol for m in listings] == sorted(DEFAULT_SYMBOLS)
    btc = next(m for m in listings if m.symbol == "BTC/USDT")
    assert (btc.amount_step, btc.min_cost) == (1e-5, 5.0)
    assert len(list_markets("simulated", type="swap")) == len(DEFAULT_SYMBOLS)
