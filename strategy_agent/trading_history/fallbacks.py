"""Reads of the pages about fallbacks: how often a strategy's policy failed lately, and alerts.

A composed cycle whose policy failed (the LLM unreachable, a timeout, a reply
that could not be used) says so in its ``compose`` record (``fallback_used``,
``fallback_reason``, ``raw_reply`` None when no reply came at all); the
coordinator writes an ``alert`` record on the ``fallback_alert_after``-th such
cycle in a row. Reads are bounded: the last ``window`` compose records and the
last few alerts, through the ``(strategy_id, kind, id)`` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strategy_agent.trading_history.store import SqliteStore

DEFAULT_WINDOW = 10
MAX_STREAK_WINDOW = 200  # a run of fallbacks is counted at most this far back


@dataclass(frozen=True)
class FallbackStats:
    """The fallbacks among a strategy's last composed cycles (failed cycles not counted).

    ``window`` is how many composed cycles were looked at (at most the number
    asked), ``fallbacks`` how many of them fell back, ``streak`` how many fell back
    in a row up to the latest one (0: the latest cycle's policy answered; counted
    over ``max(window, streak_window)`` cycles, so it may exceed ``window``). The
    ``last_*`` fields describe the latest fallback: its cycle number, time (epoch
    ms), reason, whether no reply came at all (``no_reply``: unreachable, timeout)
    and the rule used instead (``fallback_policy``, e.g. ``noop``).
    ``recovered_cycle`` is the first cycle that answered after it (None while the
    streak goes on); ``oldest_cycle`` the first cycle of the window.
    """

    window: int
    fallbacks: int
    streak: int
    oldest_cycle: int | None = None
    last_cycle: int | None = None
    last_ts: int | None = None
    last_reason: str | None = None
    no_reply: bool = False
    fallback_policy: str | None = None
    recovered_cycle: int | None = None

    @property
    def ongoing(self) -> bool:
        """The latest composed cycle fell back."""
        return self.streak > 0


@dataclass(frozen=True)
class FallbackAlert:
    """One recorded ``alert``: ``consecutive_fallbacks`` cycles in a row fell back,
    from ``since_cycle`` to ``cycle`` (written at ``ts``, epoch ms)."""

    ts: int
    compose_id: str
    cycle: int | None
    since_cycle: int | None
    consecutive_fallbacks: int
    reason: str
    message: str
    no_reply: bool


def fallback_stats(
    store: SqliteStore, strategy_id: str, window: int = DEFAULT_WINDOW, streak_window: int = 0
) -> FallbackStats:
    """The fallbacks among the strategy's last ``window`` composed cycles (one query).

    ``streak_window`` lets the run of fallbacks be counted further back than
    ``window`` (e.g. up to the alert threshold, to tell whether the ongoing run
    has reached it); at most ``MAX_STREAK_WINDOW`` cycles are read.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 cycle (got {window})")
    rows = _latest_composed(store, strategy_id, max(window, min(streak_window, MAX_STREAK_WINDOW)))
    fell_back = [bool(row[2]) for row in rows]
    streak = next((i for i, used in enumerate(fell_back) if not used), len(fell_back))
    rows, fell_back = rows[:window], fell_back[:window]
    latest = next((i for i, used in enumerate(fell_back) if used), None)
    oldest = _int(rows[-1][1]) if rows else None
    if latest is None:
        return FallbackStats(window=len(rows), fallbacks=0, streak=0, oldest_cycle=oldest)
    ts, cycle, _, reason, no_reply, policy = rows[latest]
    return FallbackStats(
        window=len(rows),
        fallbacks=sum(fell_back),
        streak=streak,
        oldest_cycle=oldest,
        last_cycle=_int(cycle),
        last_ts=int(ts),
        last_reason=str(reason) if reason else None,
        no_reply=bool(no_reply),
        fallback_policy=str(policy) if policy else None,
        recovered_cycle=_int(rows[latest - 1][1]) if latest > 0 else None,
    )


def _latest_composed(store: SqliteStore, strategy_id: str, count: int) -> list[Any]:
    """(ts, cycle, fallback_used, fallback_reason, no reply, fallback_policy) of the last
    ``count`` compose records, newest first."""
    return store.db.execute(
        "SELECT ts, json_extract(payload, '$.cycle'), json_extract(payload, '$.fallback_used'), "
        "json_extract(payload, '$.fallback_reason'), "
        "json_extract(payload, '$.raw_reply') IS NULL, "
        "json_extract(payload, '$.fallback_policy') FROM history_records "
        "WHERE strategy_id = ? AND kind = 'compose' ORDER BY id DESC LIMIT ?",
        [strategy_id, count],
    ).fetchall()


def recent_alerts(store: SqliteStore, strategy_id: str, limit: int = 5) -> list[FallbackAlert]:
    """The strategy's latest ``alert`` records, newest first."""
    return [
        _alert(record.ts, record.reference_id, record.payload)
        for record in store.records(strategy_id, kind="alert", limit=limit)
    ]


def _alert(ts: int, compose_id: str, payload: dict[str, Any]) -> FallbackAlert:
    reason = str(payload.get("reason") or "")
    return FallbackAlert(
        ts=ts,
        compose_id=compose_id,
        cycle=_int(payload.get("cycle")),
        since_cycle=_int(payload.get("since_cycle")),
        consecutive_fallbacks=_int(payload.get("consecutive_fallbacks")) or 0,
        reason=reason,
        message=str(payload.get("message") or reason),
        no_reply=bool(payload.get("no_reply")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
