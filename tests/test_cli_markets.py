"""The main CLI on real markets: `markets`, `download` then a replay run, CSV replays, symbols
refused at creation, live trading refused without its flag. Against the fake Binance; no internet."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strategy_agent.cli import main
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS
from strategy_agent.trading_history.candle_store import CandleSeries, read_candles
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_exchange import FakeExchange

ROOT = Path(__file__).resolve().parents[1]
H = 3_600_000
JAN_20 = 1_737_331_200_000  # 2025-01-20 00:00 UTC
JAN_25 = JAN_20 + 5 * 86_400_000


def write_csv(path: Path, bars: int, start_ms: int = DEFAULT_ORIGIN_MS) -> Path:
    """``bars`` hourly candles of a smooth wave, ts in epoch ms."""
    lines = ["ts,open,high,low,close,volume"]
    close = 100.0
    for i in range(bars):
        opened, close = close, 100.0 + 10.0 * math.sin(i / 5.0)
        high, low = max(opened, close) + 0.5, min(opened, close) - 0.5
        lines.append(f"{start_ms + i * H},{opened},{high},{low},{close},{10 + i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config(path: Path, exchange: str, symbols: list[str], extra: str = "", **values: str) -> Path:
    exchange_lines = "\n".join(f"{key} = {value}" for key, value in values.items())
    path.write_text(
        f"""
[llm]
provider = "builtin"
model_id = "buy_and_hold"

[exchange]
exchange_id = "{exchange}"
{exchange_lines}

[trading]
strategy_name = "cli test"
symbols = {symbols!r}
interval = "1h"
lookback = 48
{extra}
""".replace("'", '"'),
        encoding="utf-8",
    )
    return path


def strategies(db: Path) -> list[str]:
    if not db.exists():
        return []
    with SqliteStore(db) as store:
        return [row.id for row in store.list_strategies()]


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m strategy_agent ...`` in a process of its own, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "strategy_agent", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_markets_is_a_command_of_the_main_cli(fake_exchange: FakeExchange, capsys) -> None:
    argv = ["markets", "--exchange", "binance", "--api-url", fake_exchange.base_url]
    assert main([*argv, "--type", "swap"]) == 0
    out = capsys.readouterr().out
    assert "BTC/USDT:USDT" in out and "BTC/USD:BTC" not in out


def test_download_then_a_replay_run_decides_on_the_stored_candles(
    fake_exchange: FakeExchange, tmp_path: Path
) -> None:
    db = tmp_path / "cli.db"
    symbols = "BTC/USDT,ETH/USDT"
    down = cli(
        "download",
        "--exchange",
        "binance",
        "--symbols",
        symbols,
        "--interval",
        "1h",
        "--since",
        "2025-01-20",
        "--until",
        "2025-01-25",
        "--db",
        str(db),
        "--api-url",
        fake_exchange.base_url,
    )
    assert down.returncode == 0, down.stderr
    assert "BTC/USDT 1h: 120 candle(s) added" in down.stdout

    cfg = config(
        tmp_path / "replay.toml",
        "binance",
        ["BTC/USDT", "ETH/USDT"],
        trading_mode='"paper"',
        api_url=f'"{fake_exchange.base_url}"',
    )
    served_before = len(fake_exchange.requests_to("/api/v3/klines"))
    run = cli("run", "--config", str(cfg), "--replay", "--db", str(db), "--cycles", "10")
    assert run.returncode == 0, run.stderr
    assert len([line for line in run.stdout.splitlines() if line.startswith("#")]) == 10
    # the replay reads the database, never the exchange's candles
    assert len(fake_exchange.requests_to("/api/v3/klines")) == served_before

    with SqliteStore(db) as store:
        (sid,) = [row.id for row in store.list_strategies()]
        stored = {
            symbol: {
                row[0]: row[4] for row in read_candles(store, CandleSeries("binance", symbol, "1h"))
            }
            for symbol in ("BTC/USDT", "ETH/USDT")
        }
        composes = sorted(store.records(sid, kind="compose"), key=lambda r: r.ts)
        first_ts = composes[0].ts
        assert first_ts == JAN_20 + 49 * H  # the lookback full, plus the candle decided on
        for record in composes:
            (features,) = store.records(sid, kind="features", reference_id=record.reference_id)
            for symbol, candle in features.payload["candles"].items():
                assert candle["ts"] + H <= record.ts  # a closed candle only
                assert record.payload["prices"][symbol] == stored[symbol][candle["ts"]]
        assert store.load_fills(sid)  # it traded on them


def test_a_csv_replay_runs_until_its_candles_run_out(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "btc.csv", bars=60)
    cfg = config(tmp_path / "sim.toml", "simulated", ["BTC/USDT"])
    argv = ["run", "--config", str(cfg), "--csv", f"BTC/USDT={csv}", "--db", str(db_path)]
    assert main([*argv, "--cycles", "100", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "replay finished" in out
    with SqliteStore(db_path) as store:
        (sid,) = [row.id for row in store.list_strategies()]
        assert store.cycle_count(sid) == 60 - 48  # bars 49..60 closed one by one
        request = store.get_strategy(sid).request
        assert request.replay is not None and request.replay.csv_files == {"BTC/USDT": str(csv)}


@pytest.mark.parametrize(
    ("symbols", "expected"),
    [
        (["FOO/USDT"], "'FOO/USDT' is not a market on the simulated market; did you mean"),
        (["btcusdt"], "did you mean 'BTC/USDT'"),
    ],
)
def test_the_simulated_market_refuses_unknown_symbols_before_anything_is_stored(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], symbols, expected
) -> None:
    cfg = config(tmp_path / "bad.toml", "simulated", symbols)
    assert main(["run", "--config", str(cfg), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "trading.symbols" in err and expected in err and "Traceback" not in err
    assert strategies(db_path) == []


def test_a_real_exchange_refuses_a_symbol_it_does_not_list(
    db_path: Path, tmp_path: Path, fake_exchange: FakeExchange, capsys
) -> None:
    cfg = config(
        tmp_path / "bad.toml",
        "binance",
        ["BTC/USDX"],
        api_url=f'"{fake_exchange.base_url}"',
    )
    assert main(["run", "--config", str(cfg), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "'BTC/USDX' is not a market on binance; did you mean 'BTC/USDT'" in err
    assert strategies(db_path) == []


def test_live_trading_is_refused_without_the_flag(
    db_path: Path, tmp_path: Path, fake_exchange: FakeExchange, capsys
) -> None:
    cfg = config(
        tmp_path / "live.toml",
        "binance",
        ["BTC/USDT"],
        trading_mode='"live"',
        api_url=f'"{fake_exchange.base_url}"',
    )
    assert main(["run", "--config", str(cfg), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "--i-understand-live-trading" in err and "real money" in err
    assert strategies(db_path) == []


def test_the_okx_paper_example_is_a_valid_paper_request() -> None:
    from strategy_agent.config import load_request
    from strategy_agent.wiring import unsupported

    request = load_request(ROOT / "examples" / "okx_paper.toml")
    assert request.exchange.exchange_id == "okx" and request.exchange.trading_mode == "paper"
    assert request.trading.symbols == ["BTC/USDT", "ETH/USDT"]
    assert request.trading.interval == "1h"
    assert unsupported(request) is None
