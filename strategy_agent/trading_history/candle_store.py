"""Downloaded candles and the gaps an exchange reported, in the strategy database.

One row per ``(exchange, symbol, interval, ts)`` in ``candles`` (``ts`` is the
open time in epoch ms, prices in the quote currency, volume in the base
currency); only closed candles are stored, so a stored row never changes and a
second write of the same candle is ignored. ``candle_gaps`` holds open-time
ranges ``[start_ts, end_ts)`` the exchange was asked for and answered without a
candle (before a listing, during an outage): they count as known, so a re-run
does not ask again, and no candle is ever invented for them.

``missing_ranges`` answers "what is still to fetch": the open-time ranges of a
span that are neither stored nor known gaps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from strategy_agent.models import interval_ms
from strategy_agent.trading_history.connection import StoreConnection

# ts, open, high, low, close, volume
OhlcvRow = tuple[int, float, float, float, float, float]


@dataclass(frozen=True)
class CandleSeries:
    """Which series: exchange id, ccxt symbol and interval (``"1h"``)."""

    exchange: str
    symbol: str
    interval: str

    @property
    def step_ms(self) -> int:
        return interval_ms(self.interval)


@dataclass(frozen=True)
class CandleGap:
    """Open times ``[start_ts, end_ts)`` for which the exchange returned no candle."""

    start_ts: int
    end_ts: int
    recorded_ts: int


def check_row(series: CandleSeries, row: Sequence[float]) -> OhlcvRow:
    """``row`` as an ``OhlcvRow`` after checking it; ``ValueError`` says what is wrong.

    The open time must sit on the interval's grid (a multiple of the interval
    in epoch ms); prices finite and > 0 with low <= open, close <= high; volume
    finite and >= 0.
    """
    ts = int(row[0])
    values = [float(v) for v in row[1:6]]
    open_, high, low, close, volume = values
    where = f"{series.symbol} {series.interval} candle at {ts}"
    if ts != row[0] or ts < 0 or ts % series.step_ms:
        raise ValueError(f"{where}: open time is not on the {series.interval} grid")
    if not all(math.isfinite(v) for v in values) or min(open_, high, low, close) <= 0:
        raise ValueError(f"{where}: prices must be finite and > 0, volume finite ({values})")
    if volume < 0 or not (low <= min(open_, close) and max(open_, close) <= high):
        raise ValueError(f"{where}: need low <= open, close <= high and volume >= 0 ({values})")
    return (ts, open_, high, low, close, volume)


def write_candles(
    store: StoreConnection,
    series: CandleSeries,
    rows: Iterable[Sequence[float]],
    gaps: Iterable[tuple[int, int]] = (),
    *,
    now_ms: int = 0,
) -> int:
    """Store closed candles (and gaps) of one series in one transaction; returns rows added.

    A candle already stored is left as it is (closed candles do not change).
    ``gaps`` are ``(start_ts, end_ts)`` open-time ranges recorded at ``now_ms``.
    """
    checked = [check_row(series, row) for row in rows]
    key = (series.exchange, series.symbol, series.interval)
    with store.write():
        before = store.db.conn.total_changes
        store.db.conn.executemany(
            "INSERT INTO candles (exchange, symbol, interval, ts, open, high, low, close, volume) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(*key, *row) for row in checked],
        )
        added = store.db.conn.total_changes - before
        for start_ts, end_ts in gaps:
            _insert_gap(store, series, start_ts, end_ts, now_ms)
    return int(added)


def record_gap(
    store: StoreConnection, series: CandleSeries, start_ts: int, end_ts: int, now_ms: int
) -> None:
    """Record that the exchange has no candle with an open time in ``[start_ts, end_ts)``."""
    with store.write():
        _insert_gap(store, series, start_ts, end_ts, now_ms)


def _insert_gap(
    store: StoreConnection, series: CandleSeries, start_ts: int, end_ts: int, now_ms: int
) -> None:
    step = series.step_ms
    if end_ts <= start_ts or start_ts % step or end_ts % step:
        raise ValueError(
            f"gap [{start_ts}, {end_ts}) of {series.symbol} {series.interval} must be a "
            f"non-empty range on the interval's grid"
        )
    store.db.execute(
        "INSERT INTO candle_gaps (exchange, symbol, interval, start_ts, end_ts, recorded_ts) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (exchange, symbol, interval, start_ts) "
        "DO UPDATE SET end_ts = MAX(end_ts, excluded.end_ts)",
        [series.exchange, series.symbol, series.interval, start_ts, end_ts, now_ms],
    )


def read_candles(
    store: StoreConnection,
    series: CandleSeries,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[OhlcvRow]:
    """Stored candles with ``start_ms <= ts < end_ms`` (``None``: unbounded), oldest first."""
    low = -1 if start_ms is None else start_ms
    high = 2**62 if end_ms is None else end_ms
    cursor = store.db.execute(
        "SELECT ts, open, high, low, close, volume FROM candles "
        "WHERE exchange = ? AND symbol = ? AND interval = ? AND ts >= ? AND ts < ? ORDER BY ts",
        [series.exchange, series.symbol, series.interval, low, high],
    )
    return [tuple(row) for row in cursor.fetchall()]  # type: ignore[misc]


def read_gaps(store: StoreConnection, series: CandleSeries) -> list[CandleGap]:
    """Recorded gaps of a series, oldest first."""
    rows = store.rows(
        "SELECT start_ts, end_ts, recorded_ts FROM candle_gaps "
        "WHERE exchange = ? AND symbol = ? AND interval = ? ORDER BY start_ts",
        [series.exchange, series.symbol, series.interval],
    )
    return [CandleGap(**row) for row in rows]


def clear_gaps(store: StoreConnection, series: CandleSeries) -> int:
    """Forget the recorded gaps of a series (the next download asks for them again)."""
    with store.write():
        cursor = store.db.execute(
            "DELETE FROM candle_gaps WHERE exchange = ? AND symbol = ? AND interval = ?",
            [series.exchange, series.symbol, series.interval],
        )
    return int(cursor.rowcount)


def candle_count(store: StoreConnection, series: CandleSeries) -> int:
    """Number of stored candles of a series."""
    return int(
        store.scalar(
            "SELECT COUNT(*) FROM candles WHERE exchange = ? AND symbol = ? AND interval = ?",
            [series.exchange, series.symbol, series.interval],
        )
    )


def missing_ranges(
    store: StoreConnection, series: CandleSeries, start_ms: int, end_ms: int
) -> list[tuple[int, int]]:
    """Open-time ranges ``[a, b)`` within ``[start_ms, end_ms)`` neither stored nor known gaps.

    ``start_ms`` is rounded up and ``end_ms`` down to the interval's grid, so
    every range holds whole candles: ``(b - a) // step`` of them.
    """
    step = series.step_ms
    start = -(-start_ms // step) * step
    end = (end_ms // step) * step
    if end <= start:
        return []
    covered = [(ts, ts + step) for (ts,) in _stored_ts(store, series, start, end)]
    covered += [(g.start_ts, g.end_ts) for g in read_gaps(store, series)]
    covered.sort()
    missing: list[tuple[int, int]] = []
    cursor = start
    for low, high in covered:
        if high <= cursor:
            continue
        if low >= end:
            break
        if low > cursor:
            missing.append((cursor, low))
        cursor = max(cursor, high)
    if cursor < end:
        missing.append((cursor, end))
    return missing


def _stored_ts(
    store: StoreConnection, series: CandleSeries, start: int, end: int
) -> list[tuple[int]]:
    cursor = store.db.execute(
        "SELECT ts FROM candles WHERE exchange = ? AND symbol = ? AND interval = ? "
        "AND ts >= ? AND ts < ? ORDER BY ts",
        [series.exchange, series.symbol, series.interval, start, end],
    )
    return cursor.fetchall()  # type: ignore[no-any-return]


def stored_series(store: StoreConnection) -> list[tuple[CandleSeries, int, int, int]]:
    """Every stored series with its first and last open time and candle count."""
    rows = store.rows(
        "SELECT exchange, symbol, interval, MIN(ts) AS first_ts, MAX(ts) AS last_ts, "
        "COUNT(*) AS n FROM candles GROUP BY exchange, symbol, interval "
        "ORDER BY exchange, symbol, interval"
    )
    return [
        (
            CandleSeries(r["exchange"], r["symbol"], r["interval"]),
            r["first_ts"],
            r["last_ts"],
            r["n"],
        )
        for r in rows
    ]
