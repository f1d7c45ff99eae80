from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import (
    EquityPoint,
    ExchangeConfig,
    Fill,
    HistoryRecord,
    InstrumentRef,
    ModelConfig,
    TradeHistoryEntry,
    TradingConfig,
    UserRequest,
)
from strategy_agent.trading_history.store import SCHEMA_VERSION, SqliteStore

# -- helpers --------------------------------------------------------------------------------


def make_request(name: str = "Test strategy", capital: float = 10_000.0) -> UserRequest:
    return UserRequest(trading=TradingConfig(strategy_name=name, initial_capital=capital))


def make_fill(ts: int, symbol: str = "BTC/USDT", realized: float = 0.0, **extra: Any) -> Fill:
    return Fill(
        ts=ts,
        symbol=symbol,
        side="buy",
        quantity=0.5,
        price=100.0 + ts,
        fee=0.1,
        realized_pnl=realized,
        **extra,
    )


def make_equity(strategy_id: str, ts: int, equity: float) -> EquityPoint:
    return EquityPoint(
        ts=ts,
        strategy_id=strategy_id,
        cash=equity,
        equity=equity,
        realized_pnl=equity - 10_000.0,
        unrealized_pnl=0.0,
        fees_paid=1.0,
        gross_exposure=0.0,
        net_exposure=0.0,
    )


def make_trade(exit_ts: int, realized: float, fees: float = 1.0) -> TradeHistoryEntry:
    return TradeHistoryEntry(
        trade_id=f"t{exit_ts}",
        instrument=InstrumentRef(symbol="BTC/USDT", exchange_id="simulated"),
        side="buy",
        type="long",
        quantity=1.0,
        entry_ts=exit_ts - 100,
        exit_ts=exit_ts,
        entry_price=100.0,
        exit_price=100.0 + realized,
        realized_pnl=realized,
        realized_pnl_pct=realized,
        fees=fees,
        holding_ms=100,
        note="closed",
    )


def outcome(symbol: str, action: str, status: str = "accepted") -> dict[str, Any]:
    reasons = ["over the cap"] if status == "rejected" else []
    return {"symbol": symbol, "action": action, "status": status, "reasons": reasons}


def compose_record(
    ts: int, compose_id: str, outcomes: list[dict[str, Any]], **audit: Any
) -> HistoryRecord:
    return HistoryRecord(
        ts=ts,
        kind="compose",
        reference_id=compose_id,
        payload={"notes": f"notes of {compose_id}", "outcomes": outcomes, **audit},
    )


def record(ts: int, kind: str, compose_id: str, **payload: Any) -> HistoryRecord:
    return HistoryRecord(ts=ts, kind=kind, reference_id=compose_id, payload=payload)  # type: ignore[arg-type]


def table_counts(store: SqliteStore) -> dict[str, int]:
    return {
        table: store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("history_records", "fills", "trades", "equity")
    }


@pytest.fixture
def store(db_path: Path) -> Any:
    opened = SqliteStore(db_path)
    yield opened
    opened.close()


# -- schema -----------------------------------------------------------------------------------


def test_creates_tables_indexes_and_schema_version(store: SqliteStore) -> None:
    tables = set(store.db.table_names())
    assert {"strategies", "history_records", "fills", "equity", "trades"} <= tables
    indexes = {
        row["name"] for row in store.db.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {
        "idx_history_kind",
        "idx_history_reference",
        "idx_fills_strategy",
        "idx_equity_strategy",
        "idx_trades_strategy",
    } <= indexes
    assert store.db.table("history_records").pks == ["id"]
    assert store.db.table("strategies").pks == ["id"]
    assert store.schema_version == SCHEMA_VERSION


def test_wal_mode_and_foreign_keys_are_on(store: SqliteStore) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopening_keeps_data_and_does_not_migrate_again(db_path: Path) -> None:
    with SqliteStore(db_path) as first:
        sid = first.create_strategy(make_request(), now_ms=1)
    with SqliteStore(db_path) as second:
        assert second.get_strategy(sid).name == "Test strategy"
        assert second.schema_version == SCHEMA_VERSION


def test_newer_schema_version_is_refused(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError, match="newer than this program"):
        SqliteStore(db_path)


def test_default_path_creates_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SqliteStore() as store:
        store.create_strategy(make_request(), now_ms=1)
    assert (tmp_path / "data" / "strategy_agent.db").is_file()


def test_in_memory_database_works() -> None:
    with SqliteStore(":memory:") as store:
        sid = store.create_strategy(make_request(), now_ms=1)
        store.record(record(5, "features", "c1", x=1).model_copy(update={"strategy_id": sid}))
        assert store.cycle_count(sid) == 1


# -- strategies ---------------------------------------------------------------------------------


def test_strategy_crud_and_status(store: SqliteStore) -> None:
    request = make_request("Alpha")
    sid = store.create_strategy(request, now_ms=1_000)
    assert len(sid) == 12
    row = store.get_strategy(sid)
    assert (row.id, row.name, row.status, row.status_reason) == (sid, "Alpha", "created", None)
    assert row.request == request
    assert (row.created_ts, row.updated_ts) == (1_000, 1_000)

    store.set_status(sid, "error", "key refused: set OPENAI_API_KEY", now_ms=2_000)
    row = store.get_strategy(sid)
    assert (row.status, row.status_reason, row.updated_ts) == (
        "error",
        "key refused: set OPENAI_API_KEY",
        2_000,
    )
    store.set_status(sid, "running", None, now_ms=3_000)
    assert store.get_strategy(sid).status_reason is None

    store.update_request(sid, make_request("Beta", capital=500.0), now_ms=4_000)
    row = store.get_strategy(sid)
    assert row.name == "Beta"
    assert row.request.trading.initial_capital == 500.0
    assert row.created_ts == 1_000 and row.updated_ts == 4_000

    other = store.create_strategy(make_request("Gamma"), now_ms=5_000, strategy_id="gamma")
    assert other == "gamma"
    assert [r.id for r in store.list_strategies()] == [sid, "gamma"]


def test_unknown_strategy_and_bad_input_are_explained(store: SqliteStore) -> None:
    with pytest.raises(ConfigurationError, match="no strategy with id 'missing'"):
        store.get_strategy("missing")
    with pytest.raises(ConfigurationError, match="no strategy with id 'missing'"):
        store.set_status("missing", "paused", None, now_ms=1)
    with pytest.raises(ConfigurationError, match="no strategy with id 'missing'"):
        store.update_request("missing", make_request(), now_ms=1)
    with pytest.raises(ConfigurationError, match="no strategy with id 'missing'"):
        store.delete_strategy("missing")
    sid = store.create_strategy(make_request(), now_ms=1, strategy_id="s1")
    with pytest.raises(ConfigurationError, match="already exists"):
        store.create_strategy(make_request(), now_ms=2, strategy_id=sid)
    with pytest.raises(ValueError, match="unknown status"):
        store.set_status(sid, "sleeping", None, now_ms=1)  # type: ignore[arg-type]
    assert store.get_strategy(sid).status == "created"


def test_delete_strategy_removes_all_its_rows_only(store: SqliteStore) -> None:
    doomed = store.create_strategy(make_request(), now_ms=1)
    kept = store.create_strategy(make_request(), now_ms=1)
    for sid in (doomed, kept):
        store.write_cycle(
            sid,
            [record(10, "compose", f"{sid}-1")],
            [make_fill(10)],
            [make_trade(10, 5.0)],
            make_equity(sid, 10, 10_000.0),
        )
    store.delete_strategy(doomed)
    assert [r.id for r in store.list_strategies()] == [kept]
    assert table_counts(store) == {"history_records": 1, "fills": 1, "trades": 1, "equity": 1}
    assert len(store.load_fills(kept)) == 1


# -- secrets ----------------------------------------------------------------------------------------

SECRET = "sk-SECRET-XYZ"


def secret_request(custom_prompt: str | None = None) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(provider="openai", model_id="gpt-4o-mini", api_key=SecretStr(SECRET)),
        exchange=ExchangeConfig(
            api_key=SecretStr("ex-KEY-123"), secret_key=SecretStr("ex-SEC-456")
        ),
        trading=TradingConfig(custom_prompt=custom_prompt),
    )


def database_bytes(db_path: Path) -> bytes:
    files = [db_path, *(db_path.parent / (db_path.name + s) for s in ("-wal", "-shm", "-journal"))]
    return b"".join(f.read_bytes() for f in files if f.exists())


def test_secrets_never_reach_the_database_files(db_path: Path) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(secret_request(), now_ms=1)
    store.update_request(sid, secret_request(), now_ms=2)
    store.set_status(sid, "running", None, now_ms=3)
    store.write_cycle(sid, [record(10, "compose", "c1", model="gpt-4o-mini")], [], [], None)
    assert (db_path.parent / (db_path.name + "-wal")).stat().st_size > 0  # data sits in the WAL
    raw = database_bytes(db_path)
    assert b"gpt-4o-mini" in raw  # the scan does see stored text
    for secret in (SECRET, "ex-KEY-123", "ex-SEC-456"):
        assert secret.encode() not in raw
    loaded = store.get_strategy(sid).request
    assert loaded.llm.api_key is None and loaded.exchange.secret_key is None
    store.close()
    for secret in (SECRET, "ex-KEY-123", "ex-SEC-456"):
        assert secret.encode() not in database_bytes(db_path)


def test_secret_pasted_into_the_config_is_refused(store: SqliteStore) -> None:
    with pytest.raises(ConfigurationError, match="contains the value of an API key"):
        store.create_strategy(secret_request(custom_prompt=f"use key {SECRET}"), now_ms=1)
    assert store.list_strategies() == []
    sid = store.create_strategy(secret_request(), now_ms=1)
    with pytest.raises(ConfigurationError, match="contains the value of an API key"):
        store.update_request(sid, secret_request(custom_prompt=f"key={SECRET}"), now_ms=2)
    assert store.get_strategy(sid).request.trading.custom_prompt is None


# -- writing cycles -----------------------------------------------------------------------------------


def test_write_cycle_round_trips_every_row(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    fills = [make_fill(20), make_fill(10, symbol="ETH/USDT", realized=-3.5)]  # out of ts order
    trades = [make_trade(20, 4.0), make_trade(30, -2.0)]
    point = make_equity(sid, 20, 10_050.25)
    store.write_cycle(sid, [record(20, "features", "c1", a=1)], fills, trades, point)

    assert store.load_fills(sid) == [f.model_copy(update={"strategy_id": sid}) for f in fills]
    assert store.load_trades(sid) == [t.model_copy(update={"strategy_id": sid}) for t in trades]
    assert store.latest_equity(sid) == point
    assert store.records(sid)[0].payload == {"a": 1}


def test_write_cycle_is_all_or_nothing(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    records = [record(10, "features", "c1"), record(10, "compose", "c1")]
    bad_point = make_equity("someone-else", 10, 10_000.0)
    with pytest.raises(ValueError, match="belongs to strategy 'someone-else'"):
        store.write_cycle(sid, records, [make_fill(10)], [make_trade(10, 1.0)], bad_point)
    assert table_counts(store) == {"history_records": 0, "fills": 0, "trades": 0, "equity": 0}

    def broken_trade_insert(*args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_insert_trade", broken_trade_insert)
    with pytest.raises(sqlite3.OperationalError):
        store.write_cycle(
            sid, records, [make_fill(10)], [make_trade(10, 1.0)], make_equity(sid, 10, 1.0)
        )
    assert table_counts(store) == {"history_records": 0, "fills": 0, "trades": 0, "equity": 0}
    monkeypatch.undo()
    store.write_cycle(sid, records, [make_fill(10)], [], None)  # the store still works
    assert table_counts(store)["fills"] == 1


def test_writing_for_an_unknown_strategy_is_explained(store: SqliteStore) -> None:
    with pytest.raises(ConfigurationError, match="create_strategy before writing"):
        store.write_cycle("ghost", [record(1, "error", "c1")], [], [], None)
    with pytest.raises(ValueError, match="strategy_id is required"):
        store.record(record(1, "error", "c1"))
    assert table_counts(store)["history_records"] == 0


def test_record_appends_one_checkpoint(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    store.record(
        HistoryRecord(
            ts=7, kind="error", reference_id="c9", payload={"stage": "data"}, strategy_id=sid
        )
    )
    [stored] = store.records(sid)
    assert (stored.kind, stored.reference_id, stored.payload, stored.strategy_id) == (
        "error",
        "c9",
        {"stage": "data"},
        sid,
    )


def test_non_finite_payload_values_are_stored_as_null(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    store.write_cycle(sid, [record(1, "compose", "c1", latency_ms=float("nan"))], [], [], None)
    assert store.records(sid)[0].payload == {"latency_ms": None}


# -- reading ----------------------------------------------------------------------------------------


def seed_cycles(store: SqliteStore, sid: str, n: int) -> None:
    for i in range(1, n + 1):
        cid = f"c{i}"
        store.write_cycle(
            sid,
            [record(i * 10, "features", cid), record(i * 10, "compose", cid, i=i)],
            [make_fill(i * 10)],
            [],
            make_equity(sid, i * 10, 10_000.0 + i),
        )


def test_records_are_newest_first_with_pagination_and_filters(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    seed_cycles(store, sid, 5)
    compose = store.records(sid, kind="compose", limit=2)
    assert [r.payload["i"] for r in compose] == [5, 4]
    assert [r.payload["i"] for r in store.records(sid, kind="compose", limit=2, offset=2)] == [3, 2]
    assert [r.kind for r in store.records(sid, limit=3)] == ["compose", "features", "compose"]
    assert {r.kind for r in store.records(sid, reference_id="c3")} == {"features", "compose"}
    assert store.records(sid, kind="compose", offset=10) == []
    assert store.count_records(sid) == 10
    assert store.count_records(sid, kind="features") == 5
    with pytest.raises(ValueError, match="limit and offset"):
        store.records(sid, limit=-1)
    with pytest.raises(ValueError, match="unknown kind"):
        store.records(sid, kind="chatter")  # type: ignore[arg-type]


def test_cycle_count_last_cycle_ts_and_latest_equity(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    assert store.cycle_count(sid) == 0
    assert store.last_cycle_ts(sid) is None
    assert store.latest_equity(sid) is None
    seed_cycles(store, sid, 3)
    store.write_cycle(sid, [record(40, "error", "c4", stage="data")], [], [], None)
    assert store.cycle_count(sid) == 4
    assert store.failed_cycle_count(sid) == 1
    assert store.last_cycle_ts(sid) == 30  # the failed cycle does not move the market clock
    latest = store.latest_equity(sid)
    assert latest is not None and (latest.ts, latest.equity) == (30, 10_003.0)


def test_load_fills_keeps_insert_order(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    for ts in (50, 10, 30):
        store.write_cycle(sid, [record(ts, "compose", f"c{ts}")], [make_fill(ts)], [], None)
    assert [f.ts for f in store.load_fills(sid)] == [50, 10, 30]


@pytest.mark.parametrize(
    ("total", "max_points"),
    [(0, 10), (1, 10), (2, 2), (10, 10), (11, 10), (1000, 100), (1001, 100), (997, 3), (50, 7)],
)
def test_equity_series_downsampling_keeps_first_and_last(
    store: SqliteStore, total: int, max_points: int
) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    points = [make_equity(sid, ts * 1000, 10_000.0 + ts) for ts in range(total)]
    for point in points:
        store.write_cycle(sid, [record(point.ts, "compose", f"c{point.ts}")], [], [], point)
    series = store.equity_series(sid, max_points=max_points)
    assert len(series) <= max_points
    if total <= max_points:
        assert series == points
    else:
        assert len(series) >= max_points // 2
        assert series[0] == points[0] and series[-1] == points[-1]
        timestamps = [p.ts for p in series]
        assert timestamps == sorted(set(timestamps))


def test_equity_series_needs_two_points(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        store.equity_series("any", max_points=1)


# -- cycles page -------------------------------------------------------------------------------------


def seed_compose_cycles(store: SqliteStore, sid: str) -> None:
    cycles = [
        ("c1", [outcome("BTC/USDT", "buy"), outcome("ETH/USDT", "noop")], {}),
        ("c2", [outcome("BTC/USDT", "sell", "rejected")], {"fallback_used": True}),
        ("c3", [outcome("ETH/USDT", "buy", "clamped")], {}),
        ("c4", [outcome("ETH/USDT", "sell"), outcome("BTC/USDT", "buy", "rejected")], {}),
        ("c5", [], {"fallback_used": False}),
    ]
    for i, (cid, outcomes, extra) in enumerate(cycles, start=1):
        audit = {
            "prompt_tokens": 100 * i,
            "completion_tokens": 10 * i,
            "cost_usd": 0.001 * i,
            "latency_ms": 50.0 * i,
            "cycle": i,
            **extra,
        }
        store.write_cycle(
            sid,
            [record(i, "features", cid), compose_record(i, cid, outcomes, **audit)],
            [],
            [],
            None,
        )


def test_cycles_page_rows_and_pagination(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    seed_compose_cycles(store, sid)
    first = store.cycles_page(sid, limit=2)
    assert [row["compose_id"] for row in first] == ["c5", "c4"]
    c4 = first[1]
    assert c4["ts"] == 4 and c4["cycle"] == 4
    assert c4["notes"] == "notes of c4"
    assert [(a["symbol"], a["action"], a["status"]) for a in c4["actions"]] == [
        ("ETH/USDT", "sell", "accepted"),
        ("BTC/USDT", "buy", "rejected"),
    ]
    assert c4["actions"][1]["reasons"] == ["over the cap"]
    assert c4["n_rejected"] == 1
    assert (c4["prompt_tokens"], c4["completion_tokens"], c4["tokens"]) == (400, 40, 440)
    assert c4["cost_usd"] == pytest.approx(0.004)
    assert c4["latency_ms"] == 200.0
    assert c4["fallback_used"] is None
    assert first[0]["actions"] == [] and first[0]["fallback_used"] is False
    assert [r["compose_id"] for r in store.cycles_page(sid, limit=2, offset=2)] == ["c3", "c2"]
    assert [r["compose_id"] for r in store.cycles_page(sid, limit=2, offset=4)] == ["c1"]
    assert store.cycles_page(sid, limit=2, offset=4)[0]["fallback_used"] is None
    assert store.cycles_page(sid, offset=2)[2]["compose_id"] == "c1"


def test_cycles_page_filters(store: SqliteStore) -> None:
    sid = store.create_strategy(make_request(), now_ms=1)
    seed_compose_cycles(store, sid)

    def ids(**filters: Any) -> list[str]:
        rows = store.cycles_page(sid, **filters)
        assert store.count_cycles(sid, **filters) == len(rows)
        return [row["compose_id"] for row in rows]

    assert ids() == ["c5", "c4", "c3", "c2", "c1"]
    assert ids(symbol="BTC/USDT") == ["c4", "c2", "c1"]
    assert ids(action="buy") == ["c4", "c3", "c1"]
    # symbol and action must match the same outcome: c4 sells ETH and buys BTC
    assert ids(symbol="ETH/USDT", action="buy") == ["c3"]
    assert ids(symbol="BTC/USDT", action="sell") == ["c2"]
    assert ids(had_rejections=True) == ["c4", "c2"]
    assert ids(had_rejections=False) == ["c5", "c3", "c1"]
    assert ids(symbol="BTC/USDT", had_rejections=False) == ["c1"]
    assert ids(symbol="DOGE/USDT") == []
    assert store.cycles_page(sid, limit=1, had_rejections=True)[0]["compose_id"] == "c4"


# -- summaries ---------------------------------------------------------------------------------------


def test_summaries_on_a_seeded_database(store: SqliteStore) -> None:
    traded = store.create_strategy(make_request("Traded", capital=10_000.0), now_ms=1)
    underwater = store.create_strategy(make_request("Underwater", capital=10_000.0), now_ms=2)
    fresh = store.create_strategy(make_request("Fresh", capital=500.0), now_ms=3)

    # peaks 10500 then 11000; the deepest fall is 11000 -> 8800 = 20 %
    curve = [10_500.0, 9_975.0, 11_000.0, 8_800.0, 9_000.0]
    trades = [make_trade(1, 5.0), make_trade(2, -3.0), make_trade(3, 1.0, fees=1.0)]  # 1 win
    for i, equity in enumerate(curve, start=1):
        store.write_cycle(
            traded,
            [record(i, "compose", f"t{i}"), record(i, "features", f"t{i}")],
            [],
            trades if i == 5 else [],
            make_equity(traded, i * 10, equity),
        )
    # below the initial capital from the first point: 10000 -> 9000 = 10 %
    for i, equity in enumerate([9_000.0, 9_500.0], start=1):
        store.write_cycle(
            underwater, [record(i, "compose", f"u{i}")], [], [], make_equity(underwater, i, equity)
        )
    store.set_status(underwater, "error", "no candles", now_ms=99)

    by_id = {s.strategy_id: s for s in store.summaries()}
    assert list(by_id) == [traded, underwater, fresh]

    t = by_id[traded]
    assert (t.name, t.status, t.model_provider, t.model_id, t.exchange_id, t.mode) == (
        "Traded",
        "created",
        "builtin",
        "ema_crossover",
        "simulated",
        "paper",
    )
    assert t.equity == 9_000.0 and t.initial_capital == 10_000.0
    assert t.pnl_abs == pytest.approx(-1_000.0) and t.pnl_pct == pytest.approx(-10.0)
    assert t.realized_pnl == pytest.approx(-1_000.0) and t.fees_paid == 1.0
    assert t.trade_count == 3 and t.win_rate == pytest.approx(1 / 3)
    assert t.cycles == 5
    assert t.max_drawdown_pct == pytest.approx(20.0)
    assert t.last_updated_ts == 50

    u = by_id[underwater]
    assert u.status == "error" and u.status_reason == "no candles"
    assert u.max_drawdown_pct == pytest.approx(10.0)
    assert u.trade_count == 0 and u.win_rate is None
    assert u.last_updated_ts == 2  # its latest equity point, not the status change
    assert by_id[fresh].last_updated_ts == 3  # no equity yet: the row's updated_ts

    f = by_id[fresh]
    assert (f.equity, f.pnl_abs, f.pnl_pct, f.cycles, f.max_drawdown_pct) == (
        500.0,
        0.0,
        0.0,
        0,
        0.0,
    )
    assert f.realized_pnl == 0.0 and f.trade_count == 0


# -- threads -----------------------------------------------------------------------------------------


def test_two_threads_write_concurrently_with_their_own_stores(db_path: Path) -> None:
    # Both writers and a reader open the same fresh file at once (schema creation
    # and WAL switch included), then write and read side by side.
    ids = ["alpha", "beta"]
    cycles = 300
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def writer(sid: str) -> None:
        try:
            start.wait()
            with SqliteStore(db_path) as own:
                own.create_strategy(make_request(sid), now_ms=1, strategy_id=sid)
                for i in range(cycles):
                    own.write_cycle(
                        sid,
                        [record(i, "features", f"{sid}-{i}"), record(i, "compose", f"{sid}-{i}")],
                        [make_fill(i)],
                        [],
                        make_equity(sid, i, 10_000.0 + i),
                    )
                    own.set_status(sid, "running", None, now_ms=i)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    def reader() -> None:
        try:
            start.wait()
            with SqliteStore(db_path) as own:
                for _ in range(100):
                    own.summaries()
                    own.cycles_page("alpha", limit=5)
                    own.equity_series("beta", max_points=10)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(sid,)) for sid in ids]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with SqliteStore(db_path) as check:
        assert check.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for sid in ids:
            assert check.cycle_count(sid) == cycles
            assert len(check.load_fills(sid)) == cycles
            assert check.get_strategy(sid).status == "running"


def test_a_store_refuses_use_from_another_thread(store: SqliteStore) -> None:
    caught: list[BaseException] = []

    def use() -> None:
        try:
            store.list_strategies()
        except BaseException as error:
            caught.append(error)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert len(caught) == 1 and isinstance(caught[0], sqlite3.ProgrammingError)


def test_llm_cost_is_summed_from_compose_records(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cost.db")
    sid = store.create_strategy(UserRequest(), now_ms=0)
    assert store.llm_cost(sid) is None
    for i, cost in enumerate([0.002, None, 0.0005]):
        record = HistoryRecord(
            ts=i, kind="compose", reference_id=f"c{i}", payload={"cost_usd": cost}, strategy_id=sid
        )
        store.write_cycle(sid, [record], [], [], None)
    store.record(
        HistoryRecord(
            ts=9, kind="error", reference_id="c9", payload={"cost_usd": 5.0}, strategy_id=sid
        )
    )
    assert store.llm_cost(sid) == pytest.approx(0.0025)
