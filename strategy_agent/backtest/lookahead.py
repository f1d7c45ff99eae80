"""Look-ahead check: a decision must not change when the data after it is cut away.

In the spirit of freqtrade's ``lookahead-analysis``: the config's window is
replayed in full, then again with the data truncated at several cut points (the
candles opening after the cut removed, so nothing later exists). Every
decision on a candle at or before a cut (the ``compose`` record's proposal:
items with action, target, confidence and rationale, and the notes; and the
instructions: symbol, side, quantity, price mode and limit) must be the same
in both replays: one that differs could only have seen data it should not
have. Each cycle's recorded data window is checked too: every candle it saw
had closed at its time.

The replays run through the same path as a backtest (``factory.open_runtime``
on ``wiring.replay_ports``), in a scratch database; an LLM answers through the
response cache in the user's database, so the full replay pays for one window
and the truncated ones are free (a cache miss in a truncated replay means its
prompt differed: a look-ahead, reported as a difference).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strategy_agent.backtest.driver import PlannedRun
from strategy_agent.backtest.window import BatchData, RunWindow, SourceFactory, utc
from strategy_agent.clock import ManualClock
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.wiring import replay_ports

DEFAULT_CUTS = 3
SHOWN_DIFFERENCES = 5


@dataclass(frozen=True)
class Difference:
    """A decision on candle ``candle_ms`` that changed when the data was cut at ``cut_ms``."""

    cut_ms: int
    candle_ms: int
    full: dict[str, Any] | None
    truncated: dict[str, Any] | None

    def describe(self) -> str:
        return (
            f"decision on the {utc(self.candle_ms)} candle differs when the data ends at "
            f"{utc(self.cut_ms)}:\n    full:      {_short(self.full)}\n"
            f"    truncated: {_short(self.truncated)}"
        )


@dataclass
class LookaheadReport:
    """What the check compared and found; ``passed`` when nothing differs."""

    label: str
    window: RunWindow
    cuts: list[int]
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    unclosed: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.differences and not self.unclosed

    def lines(self) -> list[str]:
        head = (
            f"{self.label}: {self.window.describe()}, cut at "
            + ", ".join(utc(cut) for cut in self.cuts)
            + f"; {self.compared:,} decisions compared"
        )
        if self.passed:
            return [head, "  pass: no decision changed when the data after it was cut away"]
        out = [head]
        out += [f"  FAIL: {d.describe()}" for d in self.differences[:SHOWN_DIFFERENCES]]
        if len(self.differences) > SHOWN_DIFFERENCES:
            out.append(f"  ... and {len(self.differences) - SHOWN_DIFFERENCES} more")
        out += [f"  FAIL: {problem}" for problem in self.unclosed[:SHOWN_DIFFERENCES]]
        return out


def cut_points(window: RunWindow, cuts: int = DEFAULT_CUTS) -> list[int]:
    """``cuts`` candle open times spread evenly inside the window (before its last candle)."""
    if cuts < 1:
        raise ValueError(f"--cuts must be at least 1, got {cuts}")
    span = window.cycles - 1
    points = {
        window.first_ms + (span * k // (cuts + 1)) * window.step_ms for k in range(1, cuts + 1)
    }
    return sorted(p for p in points if p < window.last_ms) or [window.first_ms]


def lookahead_check(
    data: BatchData,
    planned: PlannedRun,
    *,
    cache_db: Path | None = None,
    cuts: int = DEFAULT_CUTS,
    factory: SourceFactory | None = None,
) -> LookaheadReport:
    """Replay ``planned`` in full and cut at ``cut_points``; report what differs (module doc).

    ``cache_db``: the database whose response cache an LLM answers through.
    ``factory`` builds the data source from the frames (tests plant a faulty one).
    """
    request = planned.request
    if not request.llm.is_builtin:  # every replay asks the same prompts: the cache answers
        request = request.model_copy(update={"llm": request.llm.model_copy(update={"cache": True})})
    report = LookaheadReport(planned.label, planned.window, cut_points(planned.window, cuts))
    with tempfile.TemporaryDirectory(prefix="lookahead-") as scratch:
        store = SqliteStore(Path(scratch) / "lookahead.db")
        try:
            full = _replay(store, data, request, planned.window, None, cache_db, factory, report)
            for cut in report.cuts:
                cut_window = RunWindow(planned.window.first_ms, cut, planned.window.interval)
                truncated = _replay(
                    store, data, request, cut_window, cut, cache_db, factory, report
                )
                for candle, decision in truncated.items():
                    report.compared += 1
                    if full.get(candle) != decision:
                        report.differences.append(
                            Difference(cut, candle, full.get(candle), decision)
                        )
        finally:
            store.close()
    return report


def _replay(
    store: SqliteStore,
    data: BatchData,
    request: Any,
    window: RunWindow,
    cut_ms: int | None,
    cache_db: Path | None,
    factory: SourceFactory | None,
    report: LookaheadReport,
) -> dict[int, dict[str, Any]]:
    """One replay of ``window``; ``{decided candle open time: decision}``."""
    from strategy_agent.factory import open_runtime

    sid = store.create_strategy(request, now_ms=int(time.time() * 1000))
    clock = ManualClock(window.first_ms)
    source = data.source(request.trading.symbols, window, clock, cut_ms=cut_ms, factory=factory)
    ports = replay_ports(request, source, clock, window.last_ms + window.step_ms)
    runtime = open_runtime(store, sid, ports=ports, cache_db=cache_db)
    while not runtime.exhausted():
        if not runtime.step().ok:
            break  # the same candle again would fail again: compare what ran
    return _decisions(store, sid, window, report)


def _decisions(
    store: SqliteStore, sid: str, window: RunWindow, report: LookaheadReport
) -> dict[int, dict[str, Any]]:
    limit = window.cycles + 10
    instructions = {
        r.reference_id: r.payload.get("instructions", [])
        for r in store.records(sid, kind="instructions", limit=limit)
    }
    decisions: dict[int, dict[str, Any]] = {}
    for record in store.records(sid, kind="compose", limit=limit):
        for symbol, seen in (record.payload.get("data_window") or {}).items():
            if seen + window.step_ms > record.ts:
                report.unclosed.append(
                    f"the cycle at {utc(record.ts)} saw the {symbol} candle of {utc(seen)}, "
                    f"which had not closed"
                )
        decisions[record.ts - window.step_ms] = _decision(
            record.payload, instructions.get(record.reference_id, [])
        )
    return decisions


def _decision(compose: dict[str, Any], instructions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What was decided, without the ids that name the strategy row."""
    proposal = compose.get("proposal") or {}
    items = [
        {
            key: item.get(key)
            for key in ("instrument", "action", "target_qty", "confidence", "rationale")
        }
        for item in proposal.get("items", [])
    ]
    orders = [
        {
            "symbol": (order.get("instrument") or {}).get("symbol"),
            **{key: order.get(key) for key in ("side", "quantity", "price_mode", "limit_price")},
        }
        for order in instructions
    ]
    return {"items": items, "notes": proposal.get("notes"), "instructions": orders}


def _short(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "no decision"
    items = ", ".join(
        f"{(i.get('instrument') or {}).get('symbol')} {i.get('action')} {i.get('target_qty')}"
        f" ({(i.get('rationale') or '')[:60]})"
        for i in decision["items"]
    )
    orders = ", ".join(
        f"{o['side']} {o['quantity']} {o['symbol']}" for o in decision["instructions"]
    )
    return f"{items or 'no items'}; orders: {orders or 'none'}"
