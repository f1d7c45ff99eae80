"""CcxtMarketDataSource against the fake Binance: closed candles, paging, retries, errors."""

from __future__ import annotations

import itertools

import pytest

from strategy_agent.data.ccxt_exchange import RetryPolicy, create_exchange
from strategy_agent.data.ccxt_market import MARKETS_MAX_AGE_MS, CcxtMarketDataSource
from strategy_agent.errors import ConfigurationError, DataUnavailableError
from tests.fakes.fake_exchange import FAKE_NOW_MS, FakeExchange, binance_source

HOUR = 3_600_000
KLINES = "/api/v3/klines"


def _expected(fake: FakeExchange, symbol: str, last_open: int, count: int) -> list[list[float]]:
    return fake.candles(symbol, "1h", last_open - (count - 1) * HOUR, last_open + 1)


def test_only_closed_candles_are_returned_and_they_are_the_exchanges(fake_exchange):
    source = binance_source(fake_exchange)

    candles = source.get_recent_candles(["BTC/USDT", "ETH/USDT:USDT"], "1h", 48)

    last_closed = FAKE_NOW_MS // HOUR * HOUR - HOUR  # now is 17 minutes into the next hour
    for symbol in ("BTC/USDT", "ETH/USDT:USDT"):
        got = [c for c in candles if c.instrument.symbol == symbol]
        assert len(got) == 48
        assert got[-1].ts == last_closed
        assert all(c.ts + HOUR <= FAKE_NOW_MS for c in got)
        assert [[c.ts, c.open, c.high, c.low, c.close, c.volume] for c in got] == _expected(
            fake_exchange, symbol, last_closed, 48
        )
        assert got[0].instrument.exchange_id == "binance"
        assert got[0].instrument.quote_ccy == "USDT"
    # the exchange did send the forming candle: the source dropped it
    served = fake_exchange.candles("BTC/USDT", "1h", last_closed, FAKE_NOW_MS + 1)
    assert [row[0] for row in served] == [last_closed, last_closed + HOUR]


def test_the_forming_candle_appears_once_it_has_closed(fake_exchange):
    source = binance_source(fake_exchange)
    before = source.get_recent_candles(["BTC/USDT"], "1h", 3)

    fake_exchange.clock.set(FAKE_NOW_MS // HOUR * HOUR + HOUR)  # the forming candle closes now
    after = source.get_recent_candles(["BTC/USDT"], "1h", 3)

    assert after[-1].ts == before[-1].ts + HOUR
    assert after[:2] == before[1:]


def test_a_long_lookback_pages_forward_from_since(fake_exchange):
    source = binance_source(fake_exchange, page_limit=100)

    candles = source.get_recent_candles(["BTC/USDT"], "1h", 250)

    stamps = [c.ts for c in candles]
    assert len(stamps) == 250 and stamps == sorted(set(stamps))
    assert all(b - a == HOUR for a, b in itertools.pairwise(stamps))
    requests = fake_exchange.requests_to(KLINES)
    assert [int(r.params["startTime"]) for r in requests] == [
        stamps[0],
        stamps[100],
        stamps[200],
    ]
    assert all(r.params["limit"] == "100" for r in requests)


def test_a_symbol_with_less_history_than_the_lookback_returns_what_exists(fake_exchange):
    last_closed = FAKE_NOW_MS // HOUR * HOUR - HOUR
    fake_exchange.listing_ms["SOL/USDT"] = last_closed - 9 * HOUR

    candles = binance_source(fake_exchange).get_recent_candles(["SOL/USDT"], "1h", 120)

    assert [c.ts for c in candles] == [last_closed - i * HOUR for i in range(9, -1, -1)]


@pytest.mark.parametrize("kind", ["network", "rate_limit", "unavailable"])
def test_network_errors_and_rate_limits_are_retried_with_backoff(fake_exchange, kind):
    sleeps: list[float] = []
    source = binance_source(
        fake_exchange, retry=RetryPolicy(attempts=4, base_delay_s=0.5, sleep=sleeps.append)
    )
    source.markets()
    fake_exchange.fail(kind, KLINES, times=2)

    candles = source.get_recent_candles(["BTC/USDT"], "1h", 5)

    assert len(candles) == 5
    assert len(fake_exchange.requests_to(KLINES)) == 3
    assert sleeps == ([1.0, 2.0] if kind == "rate_limit" else [0.5, 1.0])


@pytest.mark.parametrize(
    ("kind", "words"),
    [("network", "could not be reached after 3 tries"), ("rate_limit", "rate limiting us")],
)
def test_retries_are_bounded_then_the_data_is_unavailable(fake_exchange, kind, words):
    source = binance_source(fake_exchange)
    source.markets()
    fake_exchange.fail(kind, KLINES, times=10)

    with pytest.raises(DataUnavailableError, match=words) as caught:
        source.get_recent_candles(["BTC/USDT"], "1h", 5)

    assert "binance fetch_ohlcv BTC/USDT 1h" in str(caught.value)
    assert len(fake_exchange.requests_to(KLINES)) == 3


def test_one_exchange_instance_and_markets_loaded_once_then_daily(fake_exchange):
    source = binance_source(fake_exchange)
    exchange = source.exchange
    assert exchange.enableRateLimit is True

    for _ in range(3):
        source.get_recent_candles(["BTC/USDT"], "1h", 5)
        fake_exchange.clock.advance(HOUR)
    assert source.exchange is exchange
    assert len(fake_exchange.requests_to("/api/v3/exchangeInfo")) == 1

    fake_exchange.clock.advance(MARKETS_MAX_AGE_MS)
    source.get_recent_candles(["BTC/USDT"], "1h", 5)
    assert len(fake_exchange.requests_to("/api/v3/exchangeInfo")) == 2


def test_a_failed_daily_reload_keeps_the_markets_it_had(fake_exchange):
    source = binance_source(fake_exchange)
    source.markets()
    fake_exchange.clock.advance(MARKETS_MAX_AGE_MS)
    fake_exchange.fail("network", "/api/v3/exchangeInfo", times=10)

    candles = source.get_recent_candles(["BTC/USDT"], "1h", 5)

    assert len(candles) == 5


def test_a_failed_first_load_is_data_unavailable(fake_exchange):
    fake_exchange.fail("unavailable", "/api/v3/exchangeInfo", times=10)

    with pytest.raises(DataUnavailableError, match="load_markets"):
        binance_source(fake_exchange).get_recent_candles(["BTC/USDT"], "1h", 5)


def test_unknown_exchange_is_refused_with_a_suggestion():
    with pytest.raises(ConfigurationError, match=r"unknown exchange 'binanse'.*'binance'"):
        create_exchange("binanse")
    with pytest.raises(ConfigurationError, match="unknown exchange 'nowhere'"):
        CcxtMarketDataSource("nowhere", clock=None)  # type: ignore[arg-type]


def test_unknown_or_malformed_symbols_are_refused_before_any_candle_request(fake_exchange):
    source = binance_source(fake_exchange)

    with pytest.raises(ConfigurationError) as caught:
        source.get_recent_candles(["FOO/USDT", "btcusdt", "BTC/USDT"], "1h", 5)

    message = str(caught.value)
    assert "'FOO/USDT' is not a market on binance" in message
    assert "'btcusdt' is not a symbol in ccxt's notation" in message
    assert "did you mean 'BTC/USDT'" in message
    assert fake_exchange.requests_to(KLINES) == []


def test_an_inverse_contract_is_refused_clearly(fake_exchange):
    with pytest.raises(ConfigurationError, match=r"BTC/USD:BTC is an inverse contract.*BTC"):
        binance_source(fake_exchange).get_recent_candles(["BTC/USD:BTC"], "1h", 5)


@pytest.mark.parametrize("interval", ["7m", "1w"])
def test_an_interval_the_exchange_or_engine_does_not_offer_is_refused(fake_exchange, interval):
    source = binance_source(fake_exchange)
    source.exchange.timeframes.pop("3m")

    with pytest.raises(ConfigurationError, match=rf"does not offer '{interval}'.*1m, 5m"):
        source.get_recent_candles(["BTC/USDT"], interval, 5)
    with pytest.raises(ConfigurationError, match="does not offer '3m'"):
        source.get_recent_candles(["BTC/USDT"], "3m", 5)


def test_snapshot_of_spot_and_swap(fake_exchange):
    source = binance_source(fake_exchange)

    snap = source.snapshot(["BTC/USDT", "BTC/USDT:USDT"])

    last = fake_exchange.last_price("BTC/USDT")
    spot = snap["BTC/USDT"]
    assert spot["last"] == pytest.approx(last)
    assert spot["bid"] < spot["last"] < spot["ask"]
    day = fake_exchange.candles("BTC/USDT", "1h", FAKE_NOW_MS - 86_400_000, FAKE_NOW_MS + 1)
    assert spot["change_24h_pct"] == pytest.approx((last / day[0][1] - 1) * 100, abs=1e-3)
    assert "funding_rate" not in spot and "mark_price" not in spot
    swap = snap["BTC/USDT:USDT"]
    assert swap["last"] == pytest.approx(last)
    assert "bid" not in swap  # Binance's futures ticker has none: left out, not guessed
    assert swap["mark_price"] == pytest.approx(last * 1.0002)
    assert swap["funding_rate"] == pytest.approx(0.0001)
    assert swap["next_funding_ts"] == (FAKE_NOW_MS // (8 * HOUR) + 1) * 8 * HOUR


def test_available_symbols_are_the_tradable_ones(fake_exchange):
    symbols = binance_source(fake_exchange).available_symbols()

    assert symbols == ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "ETH/USDT:USDT", "SOL/USDT"]


def test_rules_come_from_the_loaded_markets(fake_exchange):
    rules = binance_source(fake_exchange).rules()

    btc = rules.rules_for("BTC/USDT:USDT")
    assert (btc.qty_step, btc.min_qty, btc.min_notional, btc.price_tick) == (
        0.001,
        0.001,
        100,
        0.1,
    )
    assert rules.kind("BTC/USDT:USDT") == "swap"


def test_closed_rows_never_include_the_forming_candle_whatever_range_is_asked(fake_exchange):
    source = binance_source(fake_exchange)
    forming = FAKE_NOW_MS // HOUR * HOUR

    rows = source.closed_rows("BTC/USDT", "1h", forming - 3 * HOUR, forming + 5 * HOUR)

    assert [row[0] for row in rows] == [forming - 3 * HOUR, forming - 2 * HOUR, forming - HOUR]
