"""Reads of the app's pages: bounded queries the pages need beyond ``SqliteStore``'s methods.

Every function takes an open ``SqliteStore`` and returns plain values (no
pandas); ``strategy_agent.views`` turns them into frames and figures and
computes metrics with ``trading_history.metrics``. Times are epoch ms UTC,
money is in the strategy's quote currency. Reads are bounded: index lookups,
``LIMIT`` or a thinned sample, so a page costs the same on a long history.

Candles come from what the coordinator recorded: each cycle's ``features``
checkpoint holds the last closed candle of every symbol under ``candles``
(``{symbol: {ts, open, high, low, close, volume}}``, ``ts`` the open time).
Pages never rebuild a market to draw prices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from strategy_agent.trading_history.run_metrics import EquitySeries

if TYPE_CHECKING:
    from strategy_agent.trading_history.runs import RunStatus
    from strategy_agent.trading_history.store import SqliteStore

CANDLE_FIELDS = ("ts", "open", "high", "low", "close", "volume")


# -- change detection (for the views' memo) ------------------------------------------------------


def data_version(store: SqliteStore) -> tuple[Any, ...]:
    """Changes whenever any strategy, checkpoint or equity point is written or deleted.

    Index lookups only: the largest row ids, the strategies' last update, their
    number and ids.
    """
    row = store.db.execute(
        "SELECT (SELECT MAX(id) FROM equity), (SELECT MAX(id) FROM history_records), "
        "(SELECT MAX(updated_ts) FROM strategies), "
        "(SELECT COUNT(*) FROM strategies), (SELECT group_concat(id) FROM strategies)"
    ).fetchone()
    return (store.path, *row)


def strategy_version(store: SqliteStore, strategy_id: str) -> tuple[Any, ...]:
    """Changes whenever the strategy gets a new equity point: (path, id, last ts, count)."""
    row = store.db.execute(
        "SELECT MAX(ts), COUNT(*) FROM equity WHERE strategy_id = ?", [strategy_id]
    ).fetchone()
    return (store.path, strategy_id, *row)


# -- strategies ---------------------------------------------------------------------------------


def strategy_choices(store: SqliteStore) -> list[tuple[str, str, str]]:
    """(id, name, status) of every strategy, newest first (for pickers; no config parsed)."""
    rows = store.db.execute(
        "SELECT id, name, status FROM strategies ORDER BY created_ts DESC, id"
    ).fetchall()
    return [(str(sid), str(name), str(status)) for sid, name, status in rows]


def trade_count(store: SqliteStore, strategy_id: str) -> int:
    """Number of closed trades of the strategy."""
    row = store.db.execute(
        "SELECT COUNT(*) FROM trades WHERE strategy_id = ?", [strategy_id]
    ).fetchone()
    return int(row[0])


# -- backtest runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestRunLine:
    """One backtest run as a list shows it: its run and strategy ids, batch, strategy name,
    status and reason, window and creation time (epoch ms UTC), the config's initial
    capital and the latest equity (quote currency; ``None`` before the first equity
    point), and its number of closed trades."""

    run_id: str
    strategy_id: str
    batch_id: str | None
    name: str
    status: RunStatus
    status_reason: str | None
    window_from_ms: int | None
    window_to_ms: int | None
    created_ts: int
    initial_capital: float
    final_equity: float | None
    trades: int


def backtest_run_lines(store: SqliteStore, limit: int = 1000) -> list[BacktestRunLine]:
    """Backtest runs, newest first, at most ``limit``: one query, index lookups per run (its
    latest equity point and trade count), no config parsed."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    rows = store.db.execute(
        "SELECT r.id, r.strategy_id, r.batch_id, s.name, r.status, r.status_reason, "
        "r.window_from_ms, r.window_to_ms, r.created_ts, "
        "json_extract(r.config, '$.trading.initial_capital'), "
        "(SELECT e.equity FROM equity e WHERE e.strategy_id = r.strategy_id "
        " ORDER BY e.ts DESC, e.id DESC LIMIT 1), "
        "(SELECT COUNT(*) FROM trades t WHERE t.strategy_id = r.strategy_id) "
        "FROM runs r JOIN strategies s ON s.id = r.strategy_id WHERE r.kind = 'backtest' "
        "ORDER BY r.created_ts DESC, r.rowid DESC LIMIT ?",
        [limit],
    ).fetchall()
    return [
        BacktestRunLine(
            run_id=str(run_id),
            strategy_id=str(sid),
            batch_id=batch_id,
            name=str(name),
            status=status,
            status_reason=reason,
            window_from_ms=first,
            window_to_ms=last,
            created_ts=int(created),
            initial_capital=float(capital),
            final_equity=None if equity is None else float(equity),
            trades=int(trades),
        )
        for run_id, sid, batch_id, name, status, reason, first, last, created, capital, equity,
        trades in rows
    ]  # fmt: skip


def backtest_run_count(store: SqliteStore) -> tuple[int, int]:
    """(backtest runs, their batches) stored; a run without a batch counts as its own."""
    row = store.db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT COALESCE(batch_id, 'run:' || id)) FROM runs "
        "WHERE kind = 'backtest'"
    ).fetchone()
    return int(row[0]), int(row[1])


# -- equity ---------------------------------------------------------------------------------------


EquityColumn = EquitySeries  # the name pages used before ``run_metrics`` owned the type


def equity_column(store: SqliteStore, strategy_id: str) -> EquitySeries:
    """Every equity point of the strategy as numeric arrays (for drawdown, ratios, exposure).

    ``ts`` (epoch ms), ``equity`` and ``gross_exposure`` (quote currency), oldest
    first, one value per cycle; ``fees_paid`` is the total at the last point.
    """
    rows = store.db.execute(
        "SELECT ts, equity, gross_exposure, fees_paid FROM equity WHERE strategy_id = ? "
        "ORDER BY ts, id",
        [strategy_id],
    ).fetchall()
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return EquitySeries(
        ts=table[:, 0].astype(np.int64),
        equity=np.ascontiguousarray(table[:, 1]),
        gross_exposure=np.ascontiguousarray(table[:, 2]),
        fees_paid=float(table[-1, 3]) if rows else 0.0,
    )


def cycle_span(store: SqliteStore, strategy_id: str) -> tuple[int, int, int] | None:
    """(first ts, last ts, number) of the strategy's successful cycles, or None before one.

    A failed cycle decided nothing, so it neither widens the window a strategy
    is ranked over nor counts as a decision. Index seeks on ``cycles`` (by
    cycle number), whatever the history's length.
    """
    row = store.db.execute(
        "SELECT (SELECT ts FROM cycles WHERE strategy_id = :sid AND ok = 1 ORDER BY cycle LIMIT 1), "
        "(SELECT ts FROM cycles WHERE strategy_id = :sid AND ok = 1 ORDER BY cycle DESC LIMIT 1), "
        "(SELECT COUNT(*) FROM cycles WHERE strategy_id = :sid AND ok = 1)",
        {"sid": strategy_id},
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1]), int(row[2])


def sampled_equity(store: SqliteStore, strategy_id: str, points: int) -> list[tuple[int, float]]:
    """At most ``points`` (ts, equity) pairs evenly spaced in time, first and last included.

    Each sample is the last equity point at or before its target time (one
    index seek per sample), so the cost does not grow with the history.
    """
    first, last = store.db.execute(
        "SELECT MIN(ts), MAX(ts) FROM equity WHERE strategy_id = ?", [strategy_id]
    ).fetchone()
    if first is None:
        return []
    count = max(2, points)
    targets = sorted({first + (last - first) * i // (count - 1) for i in range(count)})
    values = ", ".join("(?)" for _ in targets)
    rows = store.db.execute(
        f"WITH targets(t) AS (VALUES {values}) "
        "SELECT e.ts, e.equity FROM targets JOIN equity e ON e.id = ("
        "SELECT id FROM equity WHERE strategy_id = ? AND ts <= targets.t "
        "ORDER BY ts DESC, id DESC LIMIT 1) ORDER BY e.ts",
        [*targets, strategy_id],
    ).fetchall()
    return list(dict.fromkeys((int(ts), float(equity)) for ts, equity in rows))


# -- trades and fills ---------------------------------------------------------------------------


def trade_results(store: SqliteStore, strategy_id: str) -> list[tuple[float | None, float]]:
    """(realized P&L before fees or None, fees) of each closed trade, in the order closed.

    Two numeric columns only: the net P&L is ``metrics.net_pnl`` of each pair.
    """
    rows = store.db.execute(
        "SELECT realized_pnl, fees FROM trades WHERE strategy_id = ? ORDER BY id",
        [strategy_id],
    ).fetchall()
    return [(None if pnl is None else float(pnl), float(fees)) for pnl, fees in rows]


TRADE_PAGE_COLUMNS = (
    "symbol, type, quantity, entry_ts, exit_ts, entry_price, exit_price, "
    "realized_pnl, realized_pnl_pct, fees, holding_ms"
)


def trades_page(
    store: SqliteStore, strategy_id: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Closed trades, newest exit first, ``limit`` from ``offset``.

    Keys: ``symbol, type`` (long/short), ``quantity``, ``entry_ts, exit_ts``
    (epoch ms), ``entry_price, exit_price``, ``realized_pnl`` (before fees),
    ``realized_pnl_pct``, ``fees``, ``holding_ms``.
    """
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be >= 0 (got limit={limit}, offset={offset})")
    return list(
        store.db.query(
            f"SELECT {TRADE_PAGE_COLUMNS} FROM trades WHERE strategy_id = ? "
            "ORDER BY exit_ts DESC, id DESC LIMIT ? OFFSET ?",
            [strategy_id, limit, offset],
        )
    )


def fills_after(
    store: SqliteStore, strategy_id: str, symbol: str, after_ts: int
) -> list[dict[str, Any]]:
    """Fills of one symbol later than ``after_ts``, oldest first: ``ts, side, price, quantity``."""
    return list(
        store.db.query(
            "SELECT ts, side, price, quantity FROM fills "
            "WHERE strategy_id = ? AND symbol = ? AND ts > ? ORDER BY id",
            [strategy_id, symbol, after_ts],
        )
    )


# -- checkpoints ----------------------------------------------------------------------------------


def plan_items(
    store: SqliteStore, strategy_id: str, compose_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The proposal items (instrument, action, target_qty, confidence, rationale) of the
    given cycles, by compose id; one bounded query."""
    if not compose_ids:
        return {}
    marks = ", ".join("?" for _ in compose_ids)
    rows = store.db.execute(
        "SELECT reference_id, json_extract(payload, '$.proposal.items') FROM history_records "
        f"WHERE strategy_id = ? AND kind = 'compose' AND reference_id IN ({marks})",
        [strategy_id, *compose_ids],
    ).fetchall()
    return {str(cid): json.loads(items) if items else [] for cid, items in rows}


def recorded_candles(
    store: SqliteStore, strategy_id: str, symbol: str, limit: int
) -> list[dict[str, float]]:
    """The last ``limit`` candles of ``symbol`` the strategy's cycles recorded, oldest first.

    Keys ``ts`` (open time, epoch ms), ``open, high, low, close`` (quote
    currency) and ``volume`` (base units). One candle per open time: cycles that
    saw the same closed candle give it once. Empty before the first cycle that
    recorded candles.
    """
    rows = store.db.execute(
        "SELECT json_extract(payload, '$.candles.' || json_quote(?)) FROM history_records "
        "WHERE strategy_id = ? AND kind = 'features' ORDER BY id DESC LIMIT ?",
        [symbol, strategy_id, limit],
    ).fetchall()
    by_ts: dict[int, dict[str, float]] = {}
    for (text,) in reversed(rows):
        candle = _candle(text)
        if candle is not None:
            by_ts[int(candle["ts"])] = candle
    return [by_ts[ts] for ts in sorted(by_ts)]


def sampled_closes(
    store: SqliteStore, strategy_id: str, symbols: list[str], points: int
) -> list[tuple[int, list[float]]]:
    """(cycle ts, close of each of ``symbols`` in order) at most ``points`` times, oldest first.

    An even sample of the strategy's cycles (the first and the last included)
    from the candles they recorded; the close is the one known at the cycle's
    time. Cycles that failed or did not record every symbol are left out.
    Index seeks only (cycles by number, their ``features`` record by compose id).
    """
    last = int(
        store.db.execute(
            "SELECT COALESCE(MAX(cycle), 0) FROM cycles WHERE strategy_id = ?", [strategy_id]
        ).fetchone()[0]
    )
    if last == 0 or not symbols:
        return []
    step = max(1, -(-(last - 1) // max(points - 1, 1)))
    numbers = sorted({*range(1, last + 1, step), last})
    closes = ", ".join(
        "json_extract(h.payload, '$.candles.' || json_quote(?) || '.close')" for _ in symbols
    )
    marks = ", ".join("?" for _ in numbers)
    rows = store.db.execute(
        f"SELECT c.ts, {closes} FROM cycles c JOIN history_records h "
        "ON h.strategy_id = c.strategy_id AND h.reference_id = c.compose_id "
        "AND h.kind = 'features' "
        f"WHERE c.strategy_id = ? AND c.cycle IN ({marks}) ORDER BY c.cycle",
        [*symbols, strategy_id, *numbers],
    ).fetchall()
    return [
        (int(row[0]), [float(close) for close in row[1:]])
        for row in rows
        if all(isinstance(close, int | float) for close in row[1:])
    ]


def _candle(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    raw = json.loads(text)
    if not isinstance(raw, dict) or any(key not in raw for key in CANDLE_FIELDS):
        return None
    return {key: float(raw[key]) for key in CANDLE_FIELDS}
