"""Reads of the history store: resuming, equity, checkpoints, cycle pages and summaries.

Reads are bounded by SQL (``LIMIT``, aggregates, window functions); only
``load_fills`` and ``load_trades`` read a strategy's rows whole, for resuming it.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from strategy_agent.models import (
    EquityPoint,
    Fill,
    HistoryKind,
    HistoryRecord,
    StrategySummary,
    TradeHistoryEntry,
)
from strategy_agent.trading_history import metrics
from strategy_agent.trading_history.connection import StoreConnection

_KINDS: tuple[str, ...] = get_args(HistoryKind)

EQUITY_COLUMNS = (
    "ts, strategy_id, cash, equity, realized_pnl, unrealized_pnl, fees_paid, "
    "gross_exposure, net_exposure"
)
FILL_COLUMNS = (
    "ts, strategy_id, compose_id, instruction_id, symbol, side, quantity, price, fee, realized_pnl"
)


class HistoryReads(StoreConnection):
    """Everything the engine and the pages read back (the read half of ``SqliteStore``)."""

    # -- reads for resuming -------------------------------------------------------------------

    def load_fills(self, strategy_id: str) -> list[Fill]:
        """Every fill of the strategy, in the order they were written (for the ledger replay)."""
        rows = self.rows(
            f"SELECT {FILL_COLUMNS} FROM fills WHERE strategy_id = ? ORDER BY id", [strategy_id]
        )
        return [Fill(**row) for row in rows]

    def load_trades(self, strategy_id: str) -> list[TradeHistoryEntry]:
        """Every closed trade of the strategy, in the order they were written."""
        rows = self.rows(
            "SELECT payload FROM trades WHERE strategy_id = ? ORDER BY id", [strategy_id]
        )
        return [TradeHistoryEntry.model_validate_json(row["payload"]) for row in rows]

    def fill_totals(self, strategy_id: str) -> dict[str, float]:
        """Sums over the fills table (for reconciliation): realized P&L, fees, count."""
        rows = self.rows(
            "SELECT COUNT(*) AS fills, COALESCE(SUM(realized_pnl), 0.0) AS realized_pnl, "
            "COALESCE(SUM(fee), 0.0) AS fees FROM fills WHERE strategy_id = ?",
            [strategy_id],
        )
        return {key: float(value) for key, value in rows[0].items()}

    def llm_cost(self, strategy_id: str) -> float | None:
        """Total LLM cost in USD of the strategy's cycles; None when no cost is known."""
        value = self.scalar(
            "SELECT SUM(cost_usd) FROM history_records WHERE strategy_id = ? AND kind = 'compose'",
            [strategy_id],
        )
        return None if value is None else float(value)

    def llm_usage(self, strategy_id: str) -> tuple[int, float | None]:
        """``(tokens, cost_usd)`` of the strategy's compose records, summed with an index.

        ``tokens`` is prompt + completion tokens as the provider (or the response
        cache) reported them, 0 when none is known; ``cost_usd`` is in US dollars,
        ``None`` when no cost is known (an unpriced model); cache hits cost 0.
        """
        row = self.db.execute(
            "SELECT COALESCE(SUM(tokens), 0), SUM(cost_usd) FROM history_records "
            "WHERE strategy_id = ? AND kind = 'compose'",
            [strategy_id],
        ).fetchone()
        return int(row[0]), None if row[1] is None else float(row[1])

    def cycle_count(self, strategy_id: str) -> int:
        """Number of cycles run, failed ones included (the last cycle number)."""
        value = self.scalar("SELECT MAX(cycle) FROM cycles WHERE strategy_id = ?", [strategy_id])
        return 0 if value is None else int(value)

    def failed_cycle_count(self, strategy_id: str) -> int:
        """Number of cycles that failed (recorded as an ``error`` checkpoint)."""
        return int(
            self.scalar(
                "SELECT COUNT(*) FROM cycles WHERE strategy_id = ? AND ok = 0", [strategy_id]
            )
        )

    def last_cycle_ts(self, strategy_id: str) -> int | None:
        """Market time (epoch ms) of the last successful cycle, ``None`` before the first.

        A failed cycle does not count: the next one decides on the same candle again.
        """
        value = self.scalar(
            "SELECT ts FROM cycles WHERE strategy_id = ? AND ok = 1 ORDER BY cycle DESC LIMIT 1",
            [strategy_id],
        )
        return None if value is None else int(value)

    # -- equity ---------------------------------------------------------------------------------

    def latest_equity(self, strategy_id: str) -> EquityPoint | None:
        """The most recent equity point, or ``None`` before the first cycle."""
        rows = self.rows(
            f"SELECT {EQUITY_COLUMNS} FROM equity WHERE strategy_id = ? "
            "ORDER BY ts DESC, id DESC LIMIT 1",
            [strategy_id],
        )
        return EquityPoint(**rows[0]) if rows else None

    def equity_series(self, strategy_id: str, max_points: int = 2000) -> list[EquityPoint]:
        """Equity points oldest first, at most ``max_points`` (evenly thinned in SQL).

        When thinned, every ``step``-th point is kept plus always the first and
        the last, with ``step = ceil((n - 1) / (max_points - 1))``.
        """
        if max_points < 2:
            raise ValueError("max_points must be at least 2 (the first and the last point)")
        total = int(self.scalar("SELECT COUNT(*) FROM equity WHERE strategy_id = ?", [strategy_id]))
        step = max(1, -(-(total - 1) // (max_points - 1)))
        rows = self.rows(
            f"""WITH numbered AS (
                SELECT {EQUITY_COLUMNS}, ROW_NUMBER() OVER (ORDER BY ts, id) AS rn
                FROM equity WHERE strategy_id = :sid
            )
            SELECT {EQUITY_COLUMNS} FROM numbered
            WHERE (rn - 1) % :step = 0 OR rn = :total
            ORDER BY rn""",
            {"sid": strategy_id, "step": step, "total": total},
        )
        return [EquityPoint(**row) for row in rows]

    # -- checkpoints ------------------------------------------------------------------------------

    def records(
        self,
        strategy_id: str,
        kind: HistoryKind | None = None,
        reference_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[HistoryRecord]:
        """Checkpoints of a strategy, newest first, optionally of one kind or cycle."""
        _check_page(limit, offset)
        where, params = _record_filter(strategy_id, kind, reference_id)
        rows = self.rows(
            f"SELECT ts, strategy_id, kind, reference_id, payload FROM history_records "
            f"WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [
            HistoryRecord(
                ts=row["ts"],
                kind=row["kind"],
                reference_id=row["reference_id"],
                payload=json.loads(row["payload"]),
                strategy_id=row["strategy_id"],
            )
            for row in rows
        ]

    def count_records(self, strategy_id: str, kind: HistoryKind | None = None) -> int:
        """Number of checkpoints of a strategy, optionally of one kind."""
        where, params = _record_filter(strategy_id, kind, None)
        return int(self.scalar(f"SELECT COUNT(*) FROM history_records WHERE {where}", params))

    def cycles_page(
        self,
        strategy_id: str,
        limit: int = 50,
        offset: int = 0,
        symbol: str | None = None,
        action: str | None = None,
        had_rejections: bool | None = None,
    ) -> list[dict[str, Any]]:
        """One row per cycle (its ``compose`` checkpoint), newest first.

        Keys: ``ts, compose_id, cycle, notes, actions`` (the guardrail outcomes:
        ``symbol, action, status, reasons``...), ``n_rejected, prompt_tokens,
        completion_tokens, tokens, cost_usd, latency_ms, fallback_used``.
        ``symbol`` and ``action`` keep cycles with one outcome matching both;
        ``had_rejections`` keeps cycles with (True) or without (False) a rejection.
        """
        _check_page(limit, offset)
        where, params = _cycle_filter(strategy_id, symbol, action, had_rejections)
        rows = self.rows(
            f"""SELECT h.ts, h.reference_id AS compose_id,
                json_extract(h.payload, '$.cycle') AS cycle,
                json_extract(h.payload, '$.notes') AS notes,
                json_extract(h.payload, '$.outcomes') AS outcomes,
                {_N_REJECTED} AS n_rejected,
                json_extract(h.payload, '$.prompt_tokens') AS prompt_tokens,
                json_extract(h.payload, '$.completion_tokens') AS completion_tokens,
                json_extract(h.payload, '$.cost_usd') AS cost_usd,
                json_extract(h.payload, '$.latency_ms') AS latency_ms,
                json_extract(h.payload, '$.fallback_used') AS fallback_used
            FROM history_records h WHERE {where}
            ORDER BY h.id DESC LIMIT :limit OFFSET :offset""",
            {**params, "limit": limit, "offset": offset},
        )
        return [_cycle_row(row) for row in rows]

    def count_cycles(
        self,
        strategy_id: str,
        symbol: str | None = None,
        action: str | None = None,
        had_rejections: bool | None = None,
    ) -> int:
        """Number of rows ``cycles_page`` can page through with the same filters."""
        where, params = _cycle_filter(strategy_id, symbol, action, had_rejections)
        cursor = self.db.execute(f"SELECT COUNT(*) FROM history_records h WHERE {where}", params)
        return int(cursor.fetchone()[0])

    # -- leaderboard ------------------------------------------------------------------------------

    def summaries(self) -> list[StrategySummary]:
        """One summary per strategy, oldest first (for the CLI report).

        Before the first equity point a strategy shows its initial capital and
        zero P&L. The figures come from ``metrics``, the one owner of each
        formula: ``pnl_pct`` is ``metrics.return_pct``, ``win_rate`` is
        ``metrics.win_rate`` of the trades' net P&L (``metrics.trade_net_pnl``),
        ``max_drawdown_pct`` is ``metrics.max_drawdown_pct`` with the initial
        capital as the first peak. ``last_updated_ts`` is the ``ts`` of the
        latest equity point (the strategy's own clock, which is market time for
        a stepped simulation), else the row's ``updated_ts``.
        """
        net_pnls: dict[str, list[float]] = {}
        for row in self.rows("SELECT strategy_id, realized_pnl, fees FROM trades ORDER BY id"):
            pnl = metrics.net_pnl(row["realized_pnl"], row["fees"])
            net_pnls.setdefault(row["strategy_id"], []).append(pnl)
        curves: dict[str, list[float]] = {}
        for row in self.rows("SELECT strategy_id, equity FROM equity ORDER BY ts, id"):
            curves.setdefault(row["strategy_id"], []).append(row["equity"])
        return [
            _summary(row, net_pnls.get(row["id"], []), curves.get(row["id"], []))
            for row in self.rows(_SUMMARY_SQL)
        ]


# -- module helpers ----------------------------------------------------------------------------

_N_REJECTED = (
    "(SELECT COUNT(*) FROM json_each(h.payload, '$.outcomes') o "
    "WHERE json_extract(o.value, '$.status') = 'rejected')"
)

_SUMMARY_SQL = """
WITH latest AS (
    SELECT s.id AS strategy_id, e.ts, e.equity, e.realized_pnl, e.unrealized_pnl, e.fees_paid
    FROM strategies s
    JOIN equity e ON e.id = (
        SELECT id FROM equity WHERE strategy_id = s.id ORDER BY ts DESC, id DESC LIMIT 1
    )
),
cycle_counts AS (
    SELECT strategy_id, MAX(cycle) AS cycles, SUM(1 - ok) AS failed_cycles
    FROM cycles GROUP BY strategy_id
)
SELECT s.id, s.name, s.status, s.status_reason, s.updated_ts,
    json_extract(s.config, '$.llm.provider') AS model_provider,
    json_extract(s.config, '$.llm.model_id') AS model_id,
    json_extract(s.config, '$.exchange.exchange_id') AS exchange_id,
    json_extract(s.config, '$.exchange.trading_mode') AS mode,
    json_extract(s.config, '$.trading.initial_capital') AS initial_capital,
    l.ts AS equity_ts, l.equity, l.realized_pnl, l.unrealized_pnl, l.fees_paid,
    COALESCE(c.cycles, 0) AS cycles, COALESCE(c.failed_cycles, 0) AS failed_cycles
FROM strategies s
LEFT JOIN latest l ON l.strategy_id = s.id
LEFT JOIN cycle_counts c ON c.strategy_id = s.id
ORDER BY s.created_ts, s.id
"""


def _check_page(limit: int, offset: int) -> None:
    # SQLite reads a negative LIMIT as "no limit": refuse it instead.
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be >= 0 (got limit={limit}, offset={offset})")


def _record_filter(
    strategy_id: str, kind: str | None, reference_id: str | None
) -> tuple[str, list[Any]]:
    clauses, params = ["strategy_id = ?"], [strategy_id]
    if kind is not None:
        if kind not in _KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(_KINDS)}")
        clauses.append("kind = ?")
        params.append(kind)
    if reference_id is not None:
        clauses.append("reference_id = ?")
        params.append(reference_id)
    return " AND ".join(clauses), params


def _cycle_filter(
    strategy_id: str, symbol: str | None, action: str | None, had_rejections: bool | None
) -> tuple[str, dict[str, Any]]:
    clauses = ["h.strategy_id = :sid", "h.kind = 'compose'"]
    params: dict[str, Any] = {"sid": strategy_id}
    outcome_tests = []
    if symbol is not None:
        outcome_tests.append("json_extract(o.value, '$.symbol') = :symbol")
        params["symbol"] = symbol
    if action is not None:
        outcome_tests.append("json_extract(o.value, '$.action') = :action")
        params["action"] = action
    if outcome_tests:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(h.payload, '$.outcomes') o WHERE "
            + " AND ".join(outcome_tests)
            + ")"
        )
    if had_rejections is not None:
        clauses.append(f"{_N_REJECTED} {'>' if had_rejections else '='} 0")
    return " AND ".join(clauses), params


def _cycle_row(row: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = row["prompt_tokens"], row["completion_tokens"]
    fallback = row["fallback_used"]
    return {
        "ts": row["ts"],
        "compose_id": row["compose_id"],
        "cycle": row["cycle"],
        "notes": row["notes"],
        "actions": json.loads(row["outcomes"]) if row["outcomes"] else [],
        "n_rejected": row["n_rejected"],
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": None
        if prompt is None and completion is None
        else (prompt or 0) + (completion or 0),
        "cost_usd": row["cost_usd"],
        "latency_ms": row["latency_ms"],
        "fallback_used": None if fallback is None else bool(fallback),
    }


def _summary(row: dict[str, Any], net_pnls: list[float], curve: list[float]) -> StrategySummary:
    capital = row["initial_capital"]
    started = row["equity"] is not None
    equity = row["equity"] if started else capital
    pnl_abs = equity - capital if equity is not None and capital is not None else None
    drawdown = metrics.max_drawdown_pct(curve, initial=capital) if curve else None
    return StrategySummary(
        strategy_id=row["id"],
        name=row["name"],
        model_provider=row["model_provider"],
        model_id=row["model_id"],
        exchange_id=row["exchange_id"],
        mode=row["mode"],
        status=row["status"],
        status_reason=row["status_reason"],
        initial_capital=capital,
        equity=equity,
        realized_pnl=row["realized_pnl"] if started else 0.0,
        unrealized_pnl=row["unrealized_pnl"] if started else 0.0,
        fees_paid=row["fees_paid"] if started else 0.0,
        pnl_abs=pnl_abs,
        pnl_pct=metrics.return_pct(equity, capital) if equity is not None and capital else None,
        trade_count=len(net_pnls),
        win_rate=metrics.win_rate(net_pnls),
        max_drawdown_pct=0.0 if drawdown is None else drawdown,
        cycles=row["cycles"],
        failed_cycles=row["failed_cycles"],
        last_updated_ts=row["equity_ts"] if started else row["updated_ts"],
    )
