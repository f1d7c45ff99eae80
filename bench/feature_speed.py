"""Time one cycle's data and feature work: 120 closed 1h candles for 3 symbols.

Run: ``.venv/bin/python bench/feature_speed.py``. Prints median and p95 in ms
of ``get_recent_candles`` and ``compute_features`` over stepped cycles, after a
warm-up, plus the first (cold) call that generates the market.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategy_agent.clock import ManualClock
from strategy_agent.data.simulated_market import (
    DEFAULT_ORIGIN_MS,
    SimulatedMarketDataSource,
)
from strategy_agent.features.technical_indicators import TechnicalFeatureComputer

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
HOUR_MS = 3_600_000
CYCLES = 200


def _summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"{name:<20} median {statistics.median(ordered) * 1e3:7.3f} ms   p95 {p95 * 1e3:7.3f} ms"


def main() -> None:
    clock = ManualClock(DEFAULT_ORIGIN_MS + 5_000 * HOUR_MS)
    source = SimulatedMarketDataSource(clock=clock)
    computer = TechnicalFeatureComputer()

    started = time.perf_counter()
    candles = source.get_recent_candles(SYMBOLS, "1h", 120)
    print(f"{'cold first call':<20} {(time.perf_counter() - started) * 1e3:7.3f} ms")
    computer.compute_features(candles)

    data_times, feature_times = [], []
    for _ in range(CYCLES):
        clock.advance(HOUR_MS)
        started = time.perf_counter()
        candles = source.get_recent_candles(SYMBOLS, "1h", 120)
        middle = time.perf_counter()
        computer.compute_features(candles)
        data_times.append(middle - started)
        feature_times.append(time.perf_counter() - middle)
    print(_summary("get_recent_candles", data_times))
    print(_summary("compute_features", feature_times))


if __name__ == "__main__":
    main()
