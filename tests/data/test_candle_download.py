"""download(): paging, idempotent re-runs, resuming after a failure, gaps recorded not invented."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.data.candle_download import DownloadProgress, download
from strategy_agent.errors import ConfigurationError, DataUnavailableError
from strategy_agent.trading_history.candle_store import (
    CandleSeries,
    read_candles,
    read_gaps,
)
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_exchange import FAKE_NOW_MS, FakeExchange, binance_source

H = 3_600_000
KLINES = "/api/v3/klines"
SINCE = FAKE_NOW_MS // H * H - 300 * H  # 300 closed hours before the forming one
CLOSED_END = FAKE_NOW_MS // H * H  # open time of the forming candle


@pytest.fixture
def store(db_path: Path):
    with SqliteStore(db_path) as opened:
        yield opened


def _served(fake: FakeExchange, symbol: str, start: int = SINCE, end: int = CLOSED_END):
    return [tuple(row) for row in fake.candles(symbol, "1h", start, end)]


def _run(fake, store, symbols=("BTC/USDT",), since=SINCE, until=None, progress=None, **kwargs):
    source = binance_source(fake, page_limit=kwargs.pop("page_limit", 64), **kwargs)
    return download("binance", list(symbols), "1h", since, until, store, progress, source=source)


def test_pages_through_the_range_and_stores_every_closed_candle(fake_exchange, store):
    reports = _run(fake_exchange, store, symbols=("BTC/USDT", "ETH/USDT:USDT"))

    for symbol in ("BTC/USDT", "ETH/USDT:USDT"):
        stored = read_candles(store, CandleSeries("binance", symbol, "1h"))
        assert stored == _served(fake_exchange, symbol)
        assert len(stored) == 300
    assert [(r.symbol, r.stored, r.requests, r.gaps) for r in reports] == [
        ("BTC/USDT", 300, 5, 0),
        ("ETH/USDT:USDT", 300, 5, 0),
    ]
    starts = [int(r.params["startTime"]) for r in fake_exchange.requests_to(KLINES)]
    assert starts == [SINCE + k * 64 * H for k in range(5)]


def test_the_forming_candle_is_never_stored(fake_exchange, store):
    _run(fake_exchange, store, since=CLOSED_END - 3 * H)
    assert [row[0] for row in read_candles(store, CandleSeries("binance", "BTC/USDT", "1h"))] == [
        CLOSED_END - 3 * H,
        CLOSED_END - 2 * H,
        CLOSED_END - H,
    ]

    fake_exchange.clock.set(CLOSED_END + H + 1)  # the formerly forming candle has closed
    _run(fake_exchange, store, since=CLOSED_END - 3 * H)

    stored = read_candles(store, CandleSeries("binance", "BTC/USDT", "1h"))
    assert stored[-1] == _served(fake_exchange, "BTC/USDT", CLOSED_END, CLOSED_END + H)[0]


def test_a_second_run_fetches_nothing_already_stored(fake_exchange, store):
    _run(fake_exchange, store)
    fake_exchange.reset()

    reports = _run(fake_exchange, store)

    assert fake_exchange.requests_to(KLINES) == []
    assert (reports[0].stored, reports[0].missing_before) == (0, 0)
    fake_exchange.clock.advance(2 * H)  # two more candles closed: only they are fetched
    reports = _run(fake_exchange, store)
    assert reports[0].stored == 2
    assert [int(r.params["startTime"]) for r in fake_exchange.requests_to(KLINES)] == [CLOSED_END]


def test_an_interrupted_download_resumes_without_duplicates_or_holes(fake_exchange, store):
    fake_exchange.fail("network", KLINES, times=3, after=2)  # the 3rd page fails every retry

    with pytest.raises(DataUnavailableError, match="could not be reached after 3 tries"):
        _run(fake_exchange, store)

    series = CandleSeries("binance", "BTC/USDT", "1h")
    assert len(read_candles(store, series)) == 128  # the two pages stored before the failure
    fake_exchange.reset()

    reports = _run(fake_exchange, store)

    assert read_candles(store, series) == _served(fake_exchange, "BTC/USDT")
    assert reports[0].stored == 300 - 128
    first_start = int(fake_exchange.requests_to(KLINES)[0].params["startTime"])
    assert first_start == SINCE + 128 * H  # resumed where it stopped
    assert store.scalar("SELECT COUNT(*) FROM candles") == 300


def test_gaps_the_exchange_reports_are_recorded_and_not_invented(fake_exchange, store):
    listing = SINCE + 20 * H
    fake_exchange.listing_ms["BTC/USDT"] = listing
    fake_exchange.remove_candles("BTC/USDT", SINCE + 100 * H, SINCE + 103 * H)  # an outage
    fake_exchange.remove_candles("BTC/USDT", SINCE + 127 * H, SINCE + 131 * H)  # across pages

    reports = _run(fake_exchange, store)

    series = CandleSeries("binance", "BTC/USDT", "1h")
    stored = read_candles(store, series)
    assert stored == _served(fake_exchange, "BTC/USDT")  # exactly what exists, nothing made up
    assert len(stored) == 300 - 20 - 3 - 4
    assert [(g.start_ts, g.end_ts) for g in read_gaps(store, series)] == [
        (SINCE, listing),
        (SINCE + 100 * H, SINCE + 103 * H),
        (SINCE + 127 * H, SINCE + 131 * H),
    ]
    assert (reports[0].gaps, reports[0].gap_candles) == (3, 27)
    fake_exchange.reset()
    _run(fake_exchange, store)
    assert fake_exchange.requests_to(KLINES) == []  # known gaps are not asked again


def test_an_empty_answer_at_the_end_is_not_a_gap(fake_exchange, store):
    fake_exchange.remove_candles("BTC/USDT", CLOSED_END - 5 * H, CLOSED_END + H)

    _run(fake_exchange, store, since=CLOSED_END - 10 * H)

    series = CandleSeries("binance", "BTC/USDT", "1h")
    assert len(read_candles(store, series)) == 5
    assert read_gaps(store, series) == []  # later candles may still come: ask again next time


def test_until_bounds_the_range(fake_exchange, store):
    _run(fake_exchange, store, until=SINCE + 10 * H)

    stored = read_candles(store, CandleSeries("binance", "BTC/USDT", "1h"))
    assert [row[0] for row in stored] == [SINCE + i * H for i in range(10)]


def test_progress_is_reported_per_page_up_to_the_total(fake_exchange, store):
    seen: list[DownloadProgress] = []

    _run(fake_exchange, store, symbols=("BTC/USDT", "ETH/USDT"), progress=seen.append)

    btc = [p for p in seen if p.symbol == "BTC/USDT"]
    assert [p.done for p in btc] == [0, 64, 128, 192, 256, 300]
    assert all(p.total == 300 for p in btc)
    assert btc[-1].fraction == 1.0 and btc[-1].stored == 300 and btc[-1].requests == 5
    assert [p.symbol for p in seen][-1] == "ETH/USDT"


def test_bad_symbols_interval_or_range_are_refused_before_any_request(fake_exchange, store):
    with pytest.raises(ConfigurationError, match="'FOO/USDT' is not a market on binance"):
        _run(fake_exchange, store, symbols=("BTC/USDT", "FOO/USDT"))
    with pytest.raises(ConfigurationError, match="must be after the start"):
        _run(fake_exchange, store, until=SINCE)
    source = binance_source(fake_exchange)
    with pytest.raises(ConfigurationError, match="does not offer '7m'"):
        download("binance", ["BTC/USDT"], "7m", SINCE, None, store, source=source)

    assert fake_exchange.requests_to(KLINES) == []
    assert store.scalar("SELECT COUNT(*) FROM candles") == 0


def test_extending_back_before_the_listing_records_that_range_as_a_gap(fake_exchange, store):
    listing = SINCE + 50 * H
    fake_exchange.listing_ms["BTC/USDT"] = listing
    _run(fake_exchange, store, since=listing)
    fake_exchange.reset()

    reports = _run(fake_exchange, store, since=SINCE)  # the exchange has nothing before listing

    series = CandleSeries("binance", "BTC/USDT", "1h")
    assert [(g.start_ts, g.end_ts) for g in read_gaps(store, series)] == [(SINCE, listing)]
    assert (reports[0].stored, reports[0].gap_candles, reports[0].requests) == (0, 50, 1)
    assert read_candles(store, series) == _served(fake_exchange, "BTC/USDT")
