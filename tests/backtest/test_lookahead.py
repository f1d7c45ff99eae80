"""``lookahead-check``: built-in rules and an LLM (through the cache) pass; a peek is caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strategy_agent.backtest import window as window_module
from strategy_agent.backtest.lookahead import cut_points
from strategy_agent.backtest.window import RunWindow
from strategy_agent.cli import main
from strategy_agent.data.replay_market import ReplayMarketDataSource
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS
from strategy_agent.models import Candle
from strategy_agent.trading_history.runs import list_runs
from strategy_agent.trading_history.store import SqliteStore
from tests.backtest.helpers import SMALL_CSV, H, builtin_config
from tests.backtest.test_backtest_cli import KEY_ENV, llm_config
from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan


class PeekingSource(ReplayMarketDataSource):
    """The classic look-ahead bug: every candle carries the values of the one after it (a
    file labelled by close time read as open time). Timestamps stay honest."""

    def get_recent_candles(self, symbols: list[str], interval: str, lookback: int) -> list[Candle]:
        honest = super().get_recent_candles(symbols, interval, lookback)
        clock: Any = self._clock
        now = clock.now_ms()
        clock.set(now + H)
        try:
            ahead = {(c.instrument.symbol, c.ts): c for c in super().get_recent_candles(
                symbols, interval, lookback + 1)}  # fmt: skip
        finally:
            clock.set(now)
        peeked = []
        for candle in honest:
            later = ahead.get((candle.instrument.symbol, candle.ts + H))
            values = ("open", "high", "low", "close", "volume")
            peeked.append(
                candle if later is None
                else candle.model_copy(update={k: getattr(later, k) for k in values})
            )  # fmt: skip
        return peeked


def check(*args: str) -> int:
    return main(["lookahead-check", *args])


def test_built_in_rules_pass_on_the_simulated_market_and_a_csv(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ema = builtin_config(tmp_path / "ema.toml", "EMA", symbols='["BTC/USDT", "ETH/USDT"]')
    rsi = builtin_config(tmp_path / "rsi.toml", "RSI", "rsi_reversion")
    assert check("--config", str(ema), "--config", str(rsi), "--from", "2025-01-03", "--to",
                 "2025-01-08", "--db", str(db_path)) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("pass: no decision changed") == 2 and "lookahead-check: passed" in out
    assert "cut at 2025-01-04 11:00, 2025-01-05 23:00, 2025-01-07 11:00" in out
    assert check("--config", str(rsi), "--from", "2025-01-01", "--to", "2025-01-31",
                 "--data", f"csv:{SMALL_CSV}", "--cuts", "5", "--db", str(db_path)) == 0  # fmt: skip
    assert "lookahead-check: passed" in capsys.readouterr().out
    with SqliteStore(db_path) as store:  # the replays ran in a scratch database
        assert list_runs(store) == [] and store.list_strategies() == []


def test_an_llm_config_passes_through_the_response_cache(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv(KEY_ENV, "sk-test")
    server = FakeLlmServer(auto_reply=rsi_plan).start()
    try:
        config = llm_config(tmp_path / "llm.toml", server)
        args = ["--config", str(config), "--from", "2025-01-03", "--to", "2025-01-04",
                "--yes", "--db", str(db_path)]  # fmt: skip
        assert check(*args) == 0
        out = capsys.readouterr().out
        assert "48 LLM calls" in out and "pass: no decision changed" in out
        # the full replay asked once per candle; every truncated replay came from the cache
        assert len(server.chat_requests) == 48
        assert check(*args) == 0
        assert len(server.chat_requests) == 48  # and a second check is free
    finally:
        server.stop()


def test_a_source_that_peeks_at_the_next_candle_is_caught(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(window_module, "ReplayMarketDataSource", PeekingSource)
    ema = builtin_config(tmp_path / "ema.toml", "EMA")
    assert check("--config", str(ema), "--from", "2025-01-03", "--to", "2025-01-08",
                 "--db", str(db_path)) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "lookahead-check: FAILED" in out
    for cut in ("2025-01-04 11:00", "2025-01-05 23:00", "2025-01-07 11:00"):
        assert f"FAIL: decision on the {cut} candle differs when the data ends at {cut}" in out


def test_cut_points_lie_inside_the_window() -> None:
    window = RunWindow(DEFAULT_ORIGIN_MS, DEFAULT_ORIGIN_MS + 99 * H, "1h")
    assert cut_points(window, 3) == [DEFAULT_ORIGIN_MS + k * H for k in (24, 49, 74)]
    assert cut_points(RunWindow(0, H, "1h"), 3) == [0]
    with pytest.raises(ValueError, match="--cuts"):
        cut_points(window, 0)
