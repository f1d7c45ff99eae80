"""A year of hourly candles replayed through the whole pipeline: cycles per second.

Run: ``.venv/bin/python bench/replay.py [--cycles 8760] [--symbols 1,3] [--baseline] [--llm]``.

Each case creates a strategy in a fresh SQLite file, opens it with
``open_runtime(..., fast_replay=True)`` on the simulated market and calls
``StrategyRuntime.step`` once per candle, inside ``relaxed_collector`` as a
backtest run does: candles, features, composer
(policy + guardrails), paper fills at the next candle's open, the ledger and
the SQLite history (written in batches, flushed at the end). The wall time
counts everything from ``open_runtime`` to the last cycle written.

- ``builtin/ema_crossover`` on 1 and 3 symbols (``--symbols``).
- ``--baseline``: the same 3-symbol year on the per-cycle paths
  (``fast_replay=False``: indicators recomputed, one transaction per cycle),
  timed in the same run; the fills and equity curve must be the same.
- ``--llm``: an LLM config (OpenAI-compatible, the fake LLM server of
  ``tests/fakes`` answering with its RSI demo rule) whose replies all come from
  the response cache. A first pass fills the cache (one request per cycle to
  the fake server, about 20-30 ms each: minutes for a year; kept in
  ``--cache-db`` for the next time); the timed pass replays the year again on a
  fresh strategy and must send the server no request.

Target: the 3-symbol year in under 5 s on the project's 2-core machine (the
load average is printed: other work on the machine slows every figure).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pydantic import SecretStr  # noqa: E402

from strategy_agent.factory import open_runtime  # noqa: E402
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest  # noqa: E402
from strategy_agent.replay_speed import relaxed_collector  # noqa: E402
from strategy_agent.trading_history.store import SqliteStore  # noqa: E402

YEAR = 8_760
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
TARGET_S = 5.0
KEY = SecretStr("sk-bench")


@dataclass(frozen=True)
class Timing:
    """One replay: wall seconds for ``cycles`` cycles and what it ended with."""

    label: str
    symbols: int
    cycles: int
    wall_s: float
    equity: float
    fills: int
    failed: int

    @property
    def per_second(self) -> float:
        return self.cycles / self.wall_s

    def line(self) -> str:
        return (
            f"  {self.label:<24} {self.symbols:>3} {self.cycles:>7,} {self.wall_s:>8.2f} "
            f"{self.per_second:>9,.0f} {self.wall_s / self.cycles * 1000:>9.3f} "
            f"{self.equity:>12,.2f} {self.fills:>6}"
        )


HEADER = (
    f"  {'case':<24} {'sym':>3} {'cycles':>7} {'wall s':>8} {'cycles/s':>9} "
    f"{'ms/cycle':>9} {'final equity':>12} {'fills':>6}"
)


def replay(
    label: str,
    request: UserRequest,
    cycles: int,
    *,
    fast: bool = True,
    db_path: Path,
    cache_db: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Timing:
    """Create the strategy in ``db_path`` and step it ``cycles`` times; the wall time."""
    with SqliteStore(db_path) as store:
        strategy_id = store.create_strategy(request, now_ms=0)
        started = time.perf_counter()
        with relaxed_collector() if fast else nullcontext():  # as a backtest run steps
            runtime = open_runtime(
                store, strategy_id, api_key=KEY, fast_replay=fast, cache_db=cache_db
            )
            failed = 0
            try:
                for done in range(cycles):
                    failed += not runtime.step().ok
                    if progress is not None and done % 500 == 0:
                        progress(done)
            finally:
                runtime.flush()
        wall = time.perf_counter() - started
        point = store.latest_equity(strategy_id)
        fills = len(store.load_fills(strategy_id))
    return Timing(
        label,
        len(request.trading.symbols),
        cycles,
        wall,
        point.equity if point else float("nan"),
        fills,
        failed,
    )


def builtin_request(symbols: int) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(provider="builtin", model_id="ema_crossover"),
        trading=TradingConfig(strategy_name="bench", symbols=SYMBOLS[:symbols]),
    )


def llm_request(symbols: int, api_base: str) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(
            provider="openai",
            model_id="fake-bench-rsi",
            api_base=api_base,
            cache=True,
            timeout_s=30,
        ),
        trading=TradingConfig(strategy_name="bench llm", symbols=SYMBOLS[:symbols]),
    )


def equity_and_fills(db_path: Path) -> tuple[list[Any], list[Any]]:
    """Every equity point and fill of the one strategy in ``db_path`` (ids left out)."""
    with SqliteStore(db_path) as store:
        (row,) = store.list_strategies()
        points = [
            (p.ts, p.cash, p.equity, p.realized_pnl, p.unrealized_pnl, p.fees_paid)
            for p in store.equity_series(row.id, max_points=10**9)
        ]
        fills = [
            (f.ts, f.symbol, f.side, f.quantity, f.price, f.fee, f.realized_pnl)
            for f in store.load_fills(row.id)
        ]
    return points, fills


def run_builtin(args: argparse.Namespace, tmp: Path) -> list[Timing]:
    timings = []
    for count in args.symbols:
        path = tmp / f"fast-{count}.db"
        timings.append(
            replay("ema_crossover, fast", builtin_request(count), args.cycles, db_path=path)
        )
        print(timings[-1].line(), flush=True)
    if args.baseline:
        count = max(args.symbols)
        path = tmp / f"slow-{count}.db"
        slow = replay(
            "ema_crossover, per-cycle",
            builtin_request(count),
            args.cycles,
            fast=False,
            db_path=path,
        )
        print(slow.line(), flush=True)
        same = equity_and_fills(tmp / f"fast-{count}.db") == equity_and_fills(path)
        fast = next(t for t in timings if t.symbols == count)
        print(
            f"  per-cycle paths / fast paths: {slow.wall_s / fast.wall_s:.1f}x; every fill and "
            f"equity point the same: {'yes' if same else 'NO'}"
        )
        if not same:
            raise SystemExit("the fast paths changed the results")
    return timings


def run_llm(args: argparse.Namespace, tmp: Path) -> list[Timing]:
    from tests.fakes.fake_llm_server import FakeLlmServer, rsi_plan

    cache_db = Path(args.cache_db)
    cache_db.parent.mkdir(parents=True, exist_ok=True)
    server = FakeLlmServer(auto_reply=rsi_plan).start()
    timings = []
    try:
        for count in args.symbols:
            request = llm_request(count, server.api_base)
            asked = len(server.requests)
            started = time.perf_counter()

            def progress(
                done: int, count: int = count, started: float = started, asked: int = asked
            ) -> None:
                if len(server.requests) > asked:
                    print(
                        f"\r  filling the cache ({count} symbols): {done:,}/{args.cycles:,} "
                        f"cycles, {time.perf_counter() - started:.0f} s",
                        end="",
                        flush=True,
                    )

            fill = replay(
                "fill",
                request,
                args.cycles,
                db_path=tmp / f"fill-{count}.db",
                cache_db=cache_db,
                progress=progress,
            )
            filled = len(server.requests) - asked
            if filled:
                print(
                    f"\r  cache filled ({count} symbols): {filled:,} requests to the fake LLM "
                    f"server in {fill.wall_s:.0f} s, kept in {cache_db}"
                )
            asked = len(server.requests)
            cached = replay(
                "llm from cache, fast",
                request,
                args.cycles,
                db_path=tmp / f"cached-{count}.db",
                cache_db=cache_db,
            )
            misses = len(server.requests) - asked
            print(cached.line() + ("" if not misses else f"  ({misses} replies NOT from cache)"))
            timings.append(cached)
    finally:
        server.stop()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=YEAR)
    parser.add_argument("--symbols", type=lambda s: [int(n) for n in s.split(",")], default=[1, 3])
    parser.add_argument("--baseline", action="store_true", help="also time the per-cycle paths")
    parser.add_argument("--llm", action="store_true", help="also an LLM config from the cache")
    parser.add_argument("--no-builtin", action="store_true", help="skip the built-in rule")
    parser.add_argument("--cache-db", default=str(ROOT / "data" / "bench" / "llm_cache.db"))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(
        f"Replay of {args.cycles:,} hourly candles on the simulated market, every stage and "
        f"the SQLite history ({os.cpu_count()} CPUs, load average {load:.2f} at the start)"
    )
    print(HEADER)
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_builtin:
            timings += run_builtin(args, Path(tmp))
        if args.llm:
            timings += run_llm(args, Path(tmp))
    for timing in timings:
        if timing.symbols == 3 and timing.cycles == YEAR:
            verdict = "under" if timing.wall_s < TARGET_S else "OVER"
            print(
                f"3-symbol year, {timing.label}: {timing.wall_s:.2f} s, {verdict} the "
                f"{TARGET_S:g} s target"
            )
    failed = sum(t.failed for t in timings)
    if failed:
        print(f"{failed} cycles failed: the figures above are not comparable")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
