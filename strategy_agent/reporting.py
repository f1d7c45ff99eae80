"""Per-strategy report for the CLI: the stored summary plus a reconciliation check.

The check recomputes realized P&L and fees from the ``fills`` table and
verifies ``equity == initial + realized + unrealized - fees - funding`` on the
latest stored equity point (funding: the net funding of paper swaps, from the
latest ``funding`` record), so a report that does not add up says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strategy_agent.trading_history.store import SqliteStore

TOLERANCE = 1e-6


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(1.0, abs(scale))


def funding_total(store: SqliteStore, strategy_id: str) -> float:
    """Net funding paid (positive) or earned (negative) so far, quote currency; 0 without any."""
    records = store.records(strategy_id, kind="funding", limit=1)
    total = records[0].payload.get("funding_total") if records else None
    return float(total) if isinstance(total, int | float) else 0.0


def strategy_reports(db_path: str | Path) -> list[dict[str, Any]]:
    """One dict per strategy: summary figures, in plain JSON types."""
    with SqliteStore(db_path) as store:
        reports = []
        for summary in store.summaries():
            sid = summary.strategy_id or ""
            capital = summary.initial_capital or 0.0
            equity = summary.equity if summary.equity is not None else capital
            realized = summary.realized_pnl or 0.0
            unrealized = summary.unrealized_pnl or 0.0
            fees = summary.fees_paid or 0.0
            funding = funding_total(store, sid)
            totals = store.fill_totals(sid)
            reconciled = (
                _close(equity, capital + realized + unrealized - fees - funding, capital)
                and _close(realized, totals["realized_pnl"], capital)
                and _close(fees, totals["fees"], capital)
            )
            reports.append(
                {
                    "strategy_id": sid,
                    "name": summary.name,
                    "status": summary.status,
                    "status_reason": summary.status_reason,
                    "model": f"{summary.model_provider}/{summary.model_id}",
                    "cycles": summary.cycles or 0,
                    "failed_cycles": summary.failed_cycles,
                    "initial_capital": capital,
                    "equity": equity,
                    "return_pct": summary.pnl_pct if summary.pnl_pct is not None else 0.0,
                    "realized_pnl": realized,
                    "unrealized_pnl": unrealized,
                    "fees_paid": fees,
                    "funding_paid": funding,
                    "trades": summary.trade_count or 0,
                    "win_rate": summary.win_rate,
                    "max_drawdown_pct": summary.max_drawdown_pct or 0.0,
                    "fills": int(totals["fills"]),
                    "fills_realized_pnl": totals["realized_pnl"],
                    "fills_fees": totals["fees"],
                    "reconciled": reconciled,
                }
            )
        return reports
