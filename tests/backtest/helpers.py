"""Shared helpers of the backtest tests: candle files whose opens gap from the last close,
config files, and reading what a run traded."""

from __future__ import annotations

import math
from pathlib import Path

from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS
from strategy_agent.trading_history.store import SqliteStore

H = 3_600_000
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SMALL_CSV = FIXTURES / "btc_1h_gaps.csv"  # 240 hourly candles from 2025-01-01, opens gap


def write_gapped_csv(path: Path, bars: int, start_ms: int = DEFAULT_ORIGIN_MS) -> Path:
    """``bars`` hourly candles of a wave whose every open gaps 0.3 % above the last close, so
    a fill at the next open differs from a fill at the decision's close."""
    lines = ["ts,open,high,low,close,volume"]
    close = 100.0
    for i in range(bars):
        opened = close * 1.003
        close = 100.0 + 10.0 * math.sin(i / 5.0) + 3.0 * math.sin(i / 1.7)
        high, low = max(opened, close) + 0.5, min(opened, close) - 0.5
        lines.append(f"{start_ms + i * H},{opened!r},{high!r},{low!r},{close!r},{10 + i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def builtin_config(
    path: Path, name: str, model_id: str = "ema_crossover", extra: str = "", **trading: str
) -> Path:
    """A TOML config of a built-in rule (BTC/USDT, 1h, lookback 48 unless ``trading`` says
    otherwise, values written as TOML) plus ``extra`` lines after it."""
    values = {"symbols": '["BTC/USDT"]', "interval": '"1h"', "lookback": "48", **trading}
    lines = "\n".join(f"{key} = {value}" for key, value in values.items())
    path.write_text(
        f'[llm]\nprovider = "builtin"\nmodel_id = "{model_id}"\n\n'
        f'[trading]\nstrategy_name = "{name}"\n{lines}\n\n{extra}\n',
        encoding="utf-8",
    )
    return path


def trades_of(store: SqliteStore, strategy_id: str) -> list[tuple[str, str, float, float, int]]:
    """(symbol, side, quantity, price, ts) of every fill, in order."""
    return [(f.symbol, f.side, f.quantity, f.price, f.ts) for f in store.load_fills(strategy_id)]
