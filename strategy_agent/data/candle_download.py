"""Download closed candles from an exchange into the candle store, resumable and idempotent.

For each symbol, ``download`` asks the store which open times of
``[since_ms, until_ms)`` it does not know yet (neither stored nor a recorded
gap) and pages through ``fetch_ohlcv`` over those ranges only, so a second run
fetches only what is missing and an interrupted run resumes where it stopped
(each page is stored in its own transaction). Only closed candles are stored.
When the exchange answers a range with later candles but none in between, that
range is recorded as a gap (before a listing, an outage): nothing is invented.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from strategy_agent.clock import Clock, SystemClock
from strategy_agent.data.ccxt_market import CcxtMarketDataSource
from strategy_agent.errors import ConfigurationError, DataUnavailableError
from strategy_agent.trading_history.candle_store import (
    CandleSeries,
    check_row,
    missing_ranges,
    write_candles,
)
from strategy_agent.trading_history.connection import StoreConnection


@dataclass(frozen=True)
class DownloadProgress:
    """Where one symbol's download stands; counts are in candles (interval slots).

    ``done`` of ``total`` slots are settled (stored now or recorded as a gap);
    ``total`` is what was missing when this symbol started.
    """

    symbol: str
    interval: str
    done: int
    total: int
    stored: int
    gap_candles: int
    requests: int

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else min(1.0, self.done / self.total)


@dataclass(frozen=True)
class DownloadReport:
    """What one symbol's download did: candles added, gaps recorded, requests made."""

    symbol: str
    interval: str
    stored: int
    gaps: int
    gap_candles: int
    requests: int
    missing_before: int


ProgressCallback = Callable[[DownloadProgress], None]


def download(
    exchange_id: str,
    symbols: Sequence[str],
    interval: str,
    since_ms: int,
    until_ms: int | None,
    store: StoreConnection,
    progress: ProgressCallback | None = None,
    *,
    source: CcxtMarketDataSource | None = None,
    clock: Clock | None = None,
) -> list[DownloadReport]:
    """Fetch and store every closed candle of ``symbols`` opening in ``[since_ms, until_ms)``.

    ``until_ms=None`` means up to the newest closed candle. ``source`` (made
    from ``exchange_id`` and ``clock`` when not given) sets the exchange, its
    retries, page size and the clock that decides which candles are closed.
    Symbols and interval are checked before anything is fetched
    (``ConfigurationError``); a network failure that outlasts the retries
    raises ``DataUnavailableError`` with what was stored kept, so running
    again resumes. ``progress`` is called after every page.
    """
    if until_ms is not None and until_ms <= since_ms:
        raise ConfigurationError(
            f"the end ({_iso(until_ms)}) must be after the start ({_iso(since_ms)})"
        )
    if source is None:
        source = CcxtMarketDataSource(exchange_id, clock=clock or SystemClock())
    elif source.exchange_id != exchange_id:
        raise ValueError(f"source is for {source.exchange_id}, not {exchange_id}")
    step = source.check_interval(interval)
    source.check_symbols(list(symbols))
    now = source.clock.now_ms()
    closed_end = now // step * step  # open time of the forming candle
    end = closed_end if until_ms is None else min(until_ms, closed_end)
    reports = []
    for symbol in dict.fromkeys(symbols):
        series = CandleSeries(exchange_id, symbol, interval)
        reports.append(_download_series(source, store, series, since_ms, end, now, progress))
    return reports


@dataclass
class _Tally:
    stored: int = 0
    gaps: int = 0
    gap_candles: int = 0
    requests: int = 0
    done: int = 0


def _download_series(
    source: CcxtMarketDataSource,
    store: StoreConnection,
    series: CandleSeries,
    since_ms: int,
    end_ms: int,
    now_ms: int,
    progress: ProgressCallback | None,
) -> DownloadReport:
    step = series.step_ms
    ranges = missing_ranges(store, series, since_ms, end_ms)
    total = sum((b - a) // step for a, b in ranges)
    tally = _Tally()

    def report_progress() -> None:
        if progress is not None:
            progress(
                DownloadProgress(
                    series.symbol,
                    series.interval,
                    tally.done,
                    total,
                    tally.stored,
                    tally.gap_candles,
                    tally.requests,
                )
            )

    report_progress()
    for start, end in ranges:
        _fill_range(source, store, series, start, end, now_ms, tally, report_progress)
    return DownloadReport(
        series.symbol,
        series.interval,
        tally.stored,
        tally.gaps,
        tally.gap_candles,
        tally.requests,
        total,
    )


def _fill_range(
    source: CcxtMarketDataSource,
    store: StoreConnection,
    series: CandleSeries,
    start: int,
    end: int,
    now_ms: int,
    tally: _Tally,
    report_progress: Callable[[], None],
) -> None:
    """Page forward through ``[start, end)``; each page stored with its gaps in one transaction."""
    step = series.step_ms
    cursor = start
    while cursor < end:
        page = source.fetch_page(series.symbol, series.interval, cursor, source.page_limit)
        tally.requests += 1
        later = [r for r in page if r[0] >= cursor]
        inside = [r for r in later if r[0] < end and r[0] + step <= now_ms]
        if not inside:
            if any(r[0] >= end for r in later):  # the exchange has nothing before ``end``
                _store_page(store, series, [], [(cursor, end)], now_ms, tally)
            tally.done += (end - cursor) // step
            report_progress()
            return
        gaps = _holes(cursor, [int(r[0]) for r in inside], step)
        try:
            rows = [check_row(series, r) for r in inside]
        except ValueError as error:
            raise DataUnavailableError(f"{series.exchange} sent a bad candle: {error}") from error
        _store_page(store, series, rows, gaps, now_ms, tally)
        next_cursor = int(inside[-1][0]) + step
        tally.done += (next_cursor - cursor) // step
        cursor = next_cursor
        report_progress()


def _holes(cursor: int, stamps: list[int], step: int) -> list[tuple[int, int]]:
    """Open-time ranges from ``cursor`` to the last stamp that hold no stamp."""
    holes = []
    expected = cursor
    for ts in stamps:
        if ts % step:
            raise ConfigurationError(
                f"candle open time {ts} is not on the {step} ms grid: this exchange's candles "
                f"of this interval do not start at UTC boundaries; pick a shorter interval"
            )
        if ts > expected:
            holes.append((expected, ts))
        expected = max(expected, ts + step)
    return holes


def _store_page(
    store: StoreConnection,
    series: CandleSeries,
    rows: list[tuple[int, float, float, float, float, float]],
    gaps: list[tuple[int, int]],
    now_ms: int,
    tally: _Tally,
) -> None:
    tally.stored += write_candles(store, series, rows, gaps, now_ms=now_ms)
    tally.gaps += len(gaps)
    tally.gap_candles += sum((b - a) // series.step_ms for a, b in gaps)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
