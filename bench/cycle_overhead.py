"""Per-cycle overhead of the engine (everything but an LLM call), by stage.

Run: ``.venv/bin/python bench/cycle_overhead.py [cycles]``. Runs the embedded
demo (3 symbols, 1h, EMA crossover, paper, SQLite in a temp dir) and prints
the median and p95 of a whole cycle, then of each stage timed alone on the
same data, and the ratio of the whole cycle to the bare data+features
baseline measured in the same run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategy_agent.factory import open_runtime
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.store import SqliteStore


def timed(func: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def line(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"{name:<28} median {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        sid = store.create_strategy(UserRequest(), now_ms=0)
        runtime = open_runtime(store, sid)
        for _ in range(20):  # warm-up: market generation, first imports
            runtime.step()
        whole = timed(runtime.step, cycles)
        coordinator = runtime.coordinator
        trading = runtime.request.trading
        data = coordinator._data
        features = coordinator._features

        def fetch() -> object:
            return data.get_recent_candles(trading.symbols, trading.interval, trading.lookback)

        candles = fetch()
        data_ms = timed(fetch, cycles)
        features_ms = timed(lambda: features.compute_features(candles), cycles)  # type: ignore[arg-type]
        baseline = timed(lambda: features.compute_features(fetch()), cycles)  # type: ignore[arg-type]
        print(f"{cycles} cycles, {len(trading.symbols)} symbols, lookback {trading.lookback}")
        print(line("whole cycle", whole))
        print(line("  data (candles)", data_ms))
        print(line("  features", features_ms))
        print(line("baseline data+features", baseline))
        ratio = statistics.median(whole) / statistics.median(baseline)
        print(
            f"whole cycle / baseline: {ratio:.2f}x "
            f"(the rest: composer, paper fills, ledger, one SQLite transaction)"
        )
        print(
            f"a year of 1h candles (8,760 cycles) at this pace: "
            f"{statistics.median(whole) * 8760 / 1000:.1f} s"
        )
        store.close()


if __name__ == "__main__":
    main()
