"""One cycle of 10 LLM strategies at once, against a fake LLM that answers in 500 ms.

Run: ``.venv/bin/python bench/concurrency.py [--strategies 10] [--latency 0.5]``.

Each strategy (1 symbol, its own database connection, response cache off)
runs in its own thread calling ``StrategyRuntime.step``, as the runner's
workers do; the fake OpenAI-compatible server (``tests/fakes``) answers every
request after ``--latency`` seconds. LLM calls wait on the network, so the
threads overlap them: one cycle of all strategies should take about one
latency, not one latency per strategy. The serial baseline (the same
strategies stepped one after another on one thread) is measured in the same
run; the ratio of the two is printed as it comes out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan

KEY = SecretStr("sk-bench")


@dataclass(frozen=True)
class Timing:
    """Wall seconds of one cycle of every strategy: in parallel threads and one after another."""

    strategies: int
    latency_s: float
    parallel_s: float
    serial_s: float
    failed_cycles: int

    @property
    def ratio(self) -> float:
        """Serial over parallel wall time (the ideal is ``strategies``)."""
        return self.serial_s / self.parallel_s


def create_strategies(db_path: Path, api_base: str, count: int) -> list[str]:
    """``count`` LLM strategies on one symbol each, the response cache off."""
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT"]
    with SqliteStore(db_path) as store:
        return [
            store.create_strategy(
                UserRequest(
                    llm=ModelConfig(
                        provider="openai",
                        model_id=f"fake-{index}",
                        api_base=api_base,
                        cache=False,
                        timeout_s=30,
                    ),
                    trading=TradingConfig(
                        strategy_name=f"LLM {index}", symbols=[symbols[index % len(symbols)]]
                    ),
                ),
                now_ms=0,
            )
            for index in range(count)
        ]


def parallel_cycle(db_path: Path, strategy_ids: list[str]) -> tuple[float, int]:
    """Wall seconds of one cycle of every strategy, each on its own thread; failed cycles.

    Each thread opens its store and runtime and runs a warm-up cycle first
    (imports, first connection); the clock runs from the barrier that releases
    them all to the last cycle's end.
    """
    barrier = threading.Barrier(len(strategy_ids) + 1)
    failed: list[str] = []

    def work(strategy_id: str) -> None:
        with SqliteStore(db_path) as store:
            runtime = open_runtime(store, strategy_id, api_key=KEY)
            runtime.step()  # warm-up, not timed
            barrier.wait()
            if not runtime.step().ok:
                failed.append(strategy_id)

    threads = [threading.Thread(target=work, args=(sid,)) for sid in strategy_ids]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, len(failed)


def serial_cycle(db_path: Path, strategy_ids: list[str]) -> tuple[float, int]:
    """Wall seconds of one cycle of every strategy, one after another on this thread."""
    with SqliteStore(db_path) as store:
        runtimes: list[StrategyRuntime] = [
            open_runtime(store, sid, api_key=KEY) for sid in strategy_ids
        ]
        started = time.perf_counter()
        failed = sum(not runtime.step().ok for runtime in runtimes)
        return time.perf_counter() - started, failed


def measure(strategies: int = 10, latency_s: float = 0.5) -> Timing:
    """Both timings, with a fresh fake server and database."""
    server = FakeLlmServer(auto_reply=rsi_plan, latency_s=latency_s).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db_path = Path(tmp) / "bench.db"
            ids = create_strategies(db_path, server.api_base, strategies)
            parallel_s, parallel_failed = parallel_cycle(db_path, ids)
            serial_s, serial_failed = serial_cycle(db_path, ids)
    finally:
        server.stop()
    return Timing(strategies, latency_s, parallel_s, serial_s, parallel_failed + serial_failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per LLM answer")
    args = parser.parse_args(argv)
    timing = measure(args.strategies, args.latency)
    print(
        f"{timing.strategies} LLM strategies, fake LLM answering in "
        f"{timing.latency_s * 1000:.0f} ms, one cycle of all of them:"
    )
    print(f"  parallel threads: {timing.parallel_s:6.2f} s wall")
    print(f"  one after another: {timing.serial_s:5.2f} s wall (serial baseline, same run)")
    print(f"  ratio: {timing.ratio:.1f}x faster in parallel (ideal {timing.strategies}x)")
    if timing.failed_cycles:
        print(f"  {timing.failed_cycles} cycles failed: the figures above are not comparable")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
