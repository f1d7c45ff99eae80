"""`markets` and `download` commands, against the fake Binance; then a replay of what was stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strategy_agent.clock import ManualClock
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.errors import ConfigurationError
from strategy_agent.market_cli import main, parse_utc_ms
from strategy_agent.trading_history.candle_store import CandleSeries, read_candles
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_exchange import FAKE_NOW_MS, FakeExchange

H = 3_600_000
JAN_10 = 1_736_467_200_000
JAN_20 = 1_737_331_200_000


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    server = FakeExchange(ManualClock(FAKE_NOW_MS)).start()
    try:
        yield server
    finally:
        server.stop()


def test_markets_lists_the_tradable_markets(fake, capsys):
    assert main(["markets", "--exchange", "binance", "--api-url", fake.base_url]) == 0

    out = capsys.readouterr().out
    assert "BTC/USDT:USDT" in out and "SOL/USDT" in out
    assert "BTC/USD:BTC" not in out  # inverse: not tradable, shown only with --all
    assert out.strip().endswith("5 markets on binance")


def test_markets_filters_and_all_shows_why_a_market_is_not_tradable(fake, capsys):
    argv = ["markets", "--exchange", "binance", "--api-url", fake.base_url, "--type", "swap"]
    assert main([*argv, "--quote", "usdt"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]

    assert main([*argv, "--all"]) == 0
    out = capsys.readouterr().out
    assert "BTC/USD:BTC" in out and "inverse contract" in out


def test_markets_of_the_simulated_market_needs_no_network(capsys):
    assert main(["markets", "--exchange", "simulated", "--type", "spot"]) == 0

    assert "BTC/USDT " in capsys.readouterr().out


def test_an_unknown_exchange_is_one_error_line(capsys):
    assert main(["markets", "--exchange", "binanse"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: unknown exchange 'binanse'") and "Traceback" not in err


def test_download_then_replay(fake, tmp_path, capsys):
    db = tmp_path / "candles.db"
    argv = [
        "download",
        "--exchange",
        "binance",
        "--symbols",
        "BTC/USDT, ETH/USDT",
        "--interval",
        "1h",
        "--since",
        "2025-01-10",
        "--until",
        "2025-01-20T00:00:00Z",
        "--db",
        str(db),
        "--api-url",
        fake.base_url,
    ]

    assert main(argv) == 0

    captured = capsys.readouterr()
    assert "BTC/USDT 1h: 240 candle(s) added, 1 request(s)" in captured.out
    assert "100%" in captured.err  # the progress bar
    with SqliteStore(db) as store:
        for symbol in ("BTC/USDT", "ETH/USDT"):
            stored = read_candles(store, CandleSeries("binance", symbol, "1h"))
            assert stored == [tuple(r) for r in fake.candles(symbol, "1h", JAN_10, JAN_20)]

    fake.reset()
    assert main(argv) == 0
    assert "BTC/USDT 1h: 0 candle(s) added, 0 request(s)" in capsys.readouterr().out
    assert fake.requests_to("/api/v3/klines") == []

    clock = ManualClock(JAN_10 + 5 * H)
    with SqliteStore(db) as store:
        replay = ReplayMarketDataSource.from_store(
            store, "binance", ["BTC/USDT", "ETH/USDT"], "1h", clock=clock
        )
    candles = replay.get_recent_candles(["BTC/USDT", "ETH/USDT"], "1h", 3)
    assert [c.ts for c in candles if c.instrument.symbol == "ETH/USDT"] == [
        JAN_10 + 2 * H,
        JAN_10 + 3 * H,
        JAN_10 + 4 * H,
    ]


def test_download_refuses_a_bad_symbol_with_one_line(fake, tmp_path, capsys):
    argv = ["download", "--exchange", "binance", "--symbols", "btcusdt", "--interval", "1h"]
    argv += ["--since", "2025-01-10", "--db", str(tmp_path / "x.db"), "--api-url", fake.base_url]

    assert main(argv) == 2

    assert "'btcusdt' is not a symbol in ccxt's notation" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-10", JAN_10),
        ("2025-01-10T01:00", JAN_10 + H),
        ("2025-01-10T02:00:00+01:00", JAN_10 + H),
        ("2025-01-10T01:00Z", JAN_10 + H),
        (str(JAN_10), JAN_10),
    ],
)
def test_dates_are_utc(text, expected):
    assert parse_utc_ms(text, "--since") == expected


def test_a_bad_date_says_how_to_write_one():
    with pytest.raises(
        ConfigurationError, match=r"--since 'last week' is not a date: write e.g. 2025-01-01"
    ):
        parse_utc_ms("last week", "--since")
