"""The fast paths of a stepped replay (backtests, benches): the same results, faster.

``open_runtime(..., fast_replay=True)`` on a stepped market (the simulated
market, a replay of stored or CSV candles, a backtest's ports) swaps three
parts for ones that skip work which does not change from cycle to cycle:

- candles: ``data.series_source.SeriesCandleSource`` asks the market once per
  chunk of candles and serves each cycle a slice of what it got (the same
  ``Candle`` objects the market builds, so the same values);
- indicators: ``features.replay_features.ReplayFeatureComputer`` computes a
  chunk of windows at once with the per-cycle arithmetic (tested equal, every
  indicator, thousands of windows);
- history: ``trading_history.cycle_batch.BatchedCycleStore`` writes
  ``batch_cycles`` cycles per transaction (a failed cycle at once; call
  ``StrategyRuntime.flush`` at the end of the run, before a pause or stop).

A live market keeps the per-cycle parts and one transaction per cycle.

A backtest run also makes the garbage collector run less often while it steps
(``relaxed_collector``).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from strategy_agent.data.series_source import SeriesCandleSource
from strategy_agent.features.interfaces import FeatureComputer
from strategy_agent.features.replay_features import ReplayFeatureComputer
from strategy_agent.wiring import MarketPorts


def fast_market(ports: MarketPorts, interval: str) -> tuple[MarketPorts, FeatureComputer]:
    """``ports`` reading candles through a ``SeriesCandleSource``, and the feature computer
    that serves its windows. ``ValueError`` on a live market (no stepped clock)."""
    if ports.stepped is None:
        raise ValueError("the fast replay paths need a stepped market (simulated or replayed)")
    source = SeriesCandleSource(ports.data, ports.stepped, interval, end_ms=ports.end_ms)
    return replace(ports, data=source), ReplayFeatureComputer(source)


# The collector's first-generation threshold while a replay runs (CPython's default: 700).
REPLAY_GC_THRESHOLD = 20_000


class _Collector:
    """How many replays run in this process, and the threshold to restore after the last."""

    lock = threading.Lock()
    replays = 0
    saved: tuple[int, int, int] | None = None


@contextmanager
def relaxed_collector() -> Iterator[None]:
    """Run the cyclic garbage collector less often while the block runs (a replay).

    A replay allocates and frees hundreds of thousands of small containers a
    year (vectors, records, dicts); almost none form reference cycles, so
    reference counting frees them and the collector finds nothing. With
    CPython's first threshold of 700 net allocations it still ran about 2,000
    young and 8 full collections over a year replayed from the LLM response
    cache: about 0.5 s of 6 s (``bench/replay.py --llm``). Inside the block the
    first threshold is ``REPLAY_GC_THRESHOLD`` (a higher one is kept, a
    disabled collector stays disabled; the older generations keep theirs, so
    garbage that survived a collection waits for proportionally longer too).
    The threshold is process-wide: replays in several threads share one
    raise, and the threshold seen before the first is restored when the last
    ends (unless something else changed it meanwhile).
    """
    with _Collector.lock:
        if _Collector.replays == 0:
            first, second, third = gc.get_threshold()
            if 0 < first < REPLAY_GC_THRESHOLD:  # 0: the collector was disabled, leave it so
                _Collector.saved = (first, second, third)
                gc.set_threshold(REPLAY_GC_THRESHOLD, second, third)
        _Collector.replays += 1
    try:
        yield
    finally:
        with _Collector.lock:
            _Collector.replays -= 1
            if _Collector.replays == 0 and _Collector.saved is not None:
                if gc.get_threshold()[0] == REPLAY_GC_THRESHOLD:  # nobody changed it since
                    gc.set_threshold(*_Collector.saved)
                _Collector.saved = None
