"""The candle store (schema v4): idempotent writes, ranges, gaps, what is missing."""

from __future__ import annotations

import itertools
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy_agent.trading_history import schema
from strategy_agent.trading_history.candle_store import (
    CandleSeries,
    candle_count,
    check_row,
    clear_gaps,
    missing_ranges,
    read_candles,
    read_gaps,
    record_gap,
    stored_series,
    write_candles,
)
from strategy_agent.trading_history.store import SqliteStore

H = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
BTC = CandleSeries("okx", "BTC/USDT", "1h")


def _row(i: int, price: float = 100.0) -> tuple[int, float, float, float, float, float]:
    return (T0 + i * H, price, price + 2, price - 1, price + 1, 10.0 + i)


@pytest.fixture
def store(db_path: Path):
    with SqliteStore(db_path) as opened:
        yield opened


def test_schema_4_has_the_candle_tables_keyed_by_exchange_symbol_interval_ts(store):
    assert store.schema_version >= 4
    assert store.db.table("candles").pks == ["exchange", "symbol", "interval", "ts"]
    assert store.db.table("candle_gaps").pks == ["exchange", "symbol", "interval", "start_ts"]


def test_a_version_3_database_is_upgraded_and_keeps_its_data(db_path):
    with SqliteStore(db_path) as old:
        old.db.execute("DROP TABLE candles")
        old.db.execute("DROP TABLE candle_gaps")
        old.db.execute("DROP TABLE orders")  # v5
        old.db.execute("PRAGMA user_version = 3")
        old.db.execute("INSERT INTO strategies VALUES ('s1', 'kept', '{}', 'created', NULL, 1, 1)")
        old.db.conn.commit()

    with SqliteStore(db_path) as upgraded:
        assert upgraded.schema_version == schema.SCHEMA_VERSION
        assert write_candles(upgraded, BTC, [_row(0)]) == 1
        assert upgraded.scalar("SELECT name FROM strategies WHERE id = 's1'") == "kept"


def test_writes_are_idempotent_and_reads_are_ordered_ranges(store):
    assert write_candles(store, BTC, [_row(2), _row(0), _row(1)]) == 3
    assert write_candles(store, BTC, [_row(1, price=999.0), _row(3)]) == 1  # 1 kept as it was

    assert read_candles(store, BTC) == [_row(0), _row(1), _row(2), _row(3)]
    assert read_candles(store, BTC, T0 + H, T0 + 3 * H) == [_row(1), _row(2)]
    assert candle_count(store, BTC) == 4
    other = CandleSeries("okx", "BTC/USDT", "4h")
    assert read_candles(store, other) == []
    assert stored_series(store) == [(BTC, T0, T0 + 3 * H, 4)]


def test_the_database_refuses_a_duplicate_row():
    with pytest.raises(sqlite3.IntegrityError):
        conn = sqlite3.connect(":memory:")
        for statement in schema._V4:
            conn.execute(statement)
        for _ in range(2):
            conn.execute("INSERT INTO candles VALUES ('okx', 'BTC/USDT', '1h', 0, 1, 1, 1, 1, 1)")


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ((T0 + 1, 1.0, 1.0, 1.0, 1.0, 1.0), "grid"),
        ((T0, math.nan, 1.0, 1.0, 1.0, 1.0), "finite"),
        ((T0, 0.0, 1.0, 0.0, 1.0, 1.0), "> 0"),
        ((T0, 1.0, 1.0, 2.0, 1.0, 1.0), "low <= open"),
        ((T0, 1.0, 1.0, 1.0, 1.0, -1.0), "volume >= 0"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(store, row, words):
    with pytest.raises(ValueError, match=words):
        write_candles(store, BTC, [_row(0), row])

    assert candle_count(store, BTC) == 0
    with pytest.raises(ValueError, match=words):
        check_row(BTC, row)


def test_missing_ranges_skip_stored_candles_and_known_gaps(store):
    write_candles(store, BTC, [_row(i) for i in (0, 1, 2, 6, 7)])
    record_gap(store, BTC, T0 + 3 * H, T0 + 5 * H, now_ms=1)

    assert missing_ranges(store, BTC, T0, T0 + 10 * H) == [
        (T0 + 5 * H, T0 + 6 * H),
        (T0 + 8 * H, T0 + 10 * H),
    ]
    # bounds are rounded inwards to whole candles
    assert missing_ranges(store, BTC, T0 - H // 2, T0 + 2 * H + 1) == []
    assert missing_ranges(store, BTC, T0 + 5 * H - 1, T0 + 9 * H - 1) == [(T0 + 5 * H, T0 + 6 * H)]
    assert missing_ranges(store, BTC, T0, T0) == []


def test_gaps_are_recorded_merged_by_start_and_cleared(store):
    record_gap(store, BTC, T0, T0 + 2 * H, now_ms=5)
    record_gap(store, BTC, T0, T0 + 3 * H, now_ms=6)  # the same gap seen longer
    write_candles(store, BTC, [_row(5)], gaps=[(T0 + 4 * H, T0 + 5 * H)], now_ms=7)

    assert [(g.start_ts, g.end_ts) for g in read_gaps(store, BTC)] == [
        (T0, T0 + 3 * H),
        (T0 + 4 * H, T0 + 5 * H),
    ]
    assert missing_ranges(store, BTC, T0, T0 + 6 * H) == [(T0 + 3 * H, T0 + 4 * H)]
    assert clear_gaps(store, BTC) == 2
    assert missing_ranges(store, BTC, T0, T0 + 6 * H) == [(T0, T0 + 5 * H)]
    with pytest.raises(ValueError, match="grid"):
        record_gap(store, BTC, T0, T0 + 1, now_ms=1)


@settings(max_examples=60, deadline=None)
@given(
    stored=st.sets(st.integers(0, 40), max_size=30),
    gaps=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 5)), max_size=4),
    window=st.tuples(st.integers(0, 45), st.integers(0, 45)),
)
def test_missing_ranges_are_exactly_the_unknown_slots(tmp_path_factory, stored, gaps, window):
    path = tmp_path_factory.mktemp("candles") / "c.db"
    with SqliteStore(path) as fresh:
        write_candles(fresh, BTC, [_row(i) for i in stored])
        for start, length in gaps:
            record_gap(fresh, BTC, T0 + start * H, T0 + (start + length) * H, now_ms=1)
        low, high = sorted(window)

        ranges = missing_ranges(fresh, BTC, T0 + low * H, T0 + high * H)

    known = set(stored) | {i for s, n in gaps for i in range(s, s + n)}
    slots = [(a - T0) // H + k for a, b in ranges for k in range((b - a) // H)]
    assert slots == [i for i in range(low, high) if i not in known]
    assert all(b2 > a2 > b1 for (_, b1), (a2, b2) in itertools.pairwise(ranges))
