"""Queries of the Decisions page: a paginated, filtered timeline and one cycle in full."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from strategy_agent.trading_history import page_queries
from strategy_agent.trading_history.fallbacks import (
    DEFAULT_WINDOW,
    FallbackAlert,
    FallbackStats,
    fallback_stats,
    recent_alerts,
)
from strategy_agent.views.cycle_detail import CycleDetail, detail_from_records

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

ACTIONS = ["buy", "sell", "flat", "noop"]
TIMELINE_COLUMNS = [
    "Time",
    "Cycle",
    "Rationale",
    "Actions",
    "Rejected",
    "Tokens",
    "Cost (USD)",
    "Latency (ms)",
    "Fallback",
    "compose_id",
]


@dataclass(frozen=True)
class DecisionFilters:
    symbol: str | None = None
    action: str | None = None
    had_rejections: bool | None = None


@dataclass
class TimelinePage:
    """One page of the timeline (newest first) and how many cycles match."""

    rows: pd.DataFrame
    total: int
    page: int
    pages: int


def timeline(
    store: SqliteStore,
    strategy_id: str,
    filters: DecisionFilters,
    page: int = 1,
    page_size: int = 25,
) -> TimelinePage:
    """Cycles matching ``filters``, ``page_size`` per page; ``page`` is clamped into range."""
    symbol, action, rejected = filters.symbol, filters.action, filters.had_rejections
    total = store.count_cycles(strategy_id, symbol, action, rejected)
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 1), pages)
    rows = store.cycles_page(
        strategy_id, page_size, (page - 1) * page_size, symbol, action, rejected
    )
    items = page_queries.plan_items(store, strategy_id, [r["compose_id"] for r in rows])
    frame = pd.DataFrame(
        [_row(r, items.get(r["compose_id"], [])) for r in rows], columns=TIMELINE_COLUMNS
    )
    return TimelinePage(rows=frame, total=total, page=page, pages=pages)


def _row(row: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    outcomes = row.get("actions") or []
    acted = [o for o in outcomes if o.get("action") != "noop"]
    return {
        "Time": pd.Timestamp(row["ts"], unit="ms", tz="UTC"),
        "Cycle": row.get("cycle"),
        "Rationale": rationale(row.get("notes"), items),
        "Actions": ", ".join(_action_text(o) for o in acted) or "hold",
        "Rejected": row.get("n_rejected") or 0,
        "Tokens": row.get("tokens"),
        "Cost (USD)": row.get("cost_usd"),
        "Latency (ms)": row.get("latency_ms"),
        "Fallback": bool(row.get("fallback_used")),
        "compose_id": row["compose_id"],
    }


def _action_text(outcome: dict[str, Any]) -> str:
    status = str(outcome.get("status"))
    suffix = f" ({status})" if status in {"rejected", "clamped"} else ""
    return f"{outcome.get('action')} {outcome.get('symbol')}{suffix}"


def rationale(notes: str | None, items: list[dict[str, Any]], limit: int = 300) -> str:
    """The model's notes, then each acted-on item's rationale (all items when it held)."""
    acted = [i for i in items if i.get("action") != "noop"] or items
    parts = [] if not notes or notes.startswith("built-in rule") else [notes]
    for item in acted:
        text = item.get("rationale")
        if text:
            symbol = _symbol(item.get("instrument")).split("/")[0]
            parts.append(f"{symbol}: {text}")
    joined = " · ".join(parts)
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def _symbol(instrument: Any) -> str:
    if isinstance(instrument, dict):
        return str(instrument.get("symbol", "?"))
    return str(instrument)


def cycle_detail(store: SqliteStore, strategy_id: str, compose_id: str) -> CycleDetail | None:
    """Every checkpoint of one cycle, rebuilt into a ``CycleDetail`` (None if unknown)."""
    records = store.records(strategy_id, reference_id=compose_id, limit=20)
    if not records:
        return None
    return detail_from_records(list(reversed(records)))


def latest_failures(store: SqliteStore, strategy_id: str, limit: int = 5) -> list[dict[str, Any]]:
    """The most recent failed cycles (stage and reason), newest first."""
    return [
        {"ts": r.ts, "compose_id": r.reference_id, **r.payload}
        for r in store.records(strategy_id, kind="error", limit=limit)
    ]


def fallback_state(
    store: SqliteStore, strategy_id: str, window: int = DEFAULT_WINDOW, alerts: int = 5
) -> tuple[FallbackStats, list[FallbackAlert]]:
    """The fallbacks among the last ``window`` composed cycles and the latest alerts."""
    return fallback_stats(store, strategy_id, window), recent_alerts(store, strategy_id, alerts)
