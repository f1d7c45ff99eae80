"""The database itself refuses a duplicate cycle, fill, record or equity point (schema v3)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import EquityPoint, Fill, HistoryRecord, TradingConfig, UserRequest
from strategy_agent.trading_history import schema
from strategy_agent.trading_history.store import DuplicateCycle, SqliteStore


def compose(sid: str, cycle: int, ts: int, kind: str = "compose") -> HistoryRecord:
    return HistoryRecord(
        ts=ts,
        kind=kind,  # type: ignore[arg-type]
        reference_id=f"{sid}-{cycle:06d}",
        payload={"cycle": cycle},
        strategy_id=sid,
    )


def fill(ts: int, instruction_id: str) -> Fill:
    return Fill(
        ts=ts, instruction_id=instruction_id, symbol="BTC/USDT", side="buy", quantity=1.0,
        price=100.0, fee=0.1,
    )  # fmt: skip


def point(sid: str, ts: int) -> EquityPoint:
    return EquityPoint(
        ts=ts, strategy_id=sid, cash=1.0, equity=1.0, realized_pnl=0.0, unrealized_pnl=0.0,
        fees_paid=0.0, gross_exposure=0.0, net_exposure=0.0,
    )  # fmt: skip


def counts(store: SqliteStore) -> dict[str, int]:
    tables = ("cycles", "history_records", "fills", "equity")
    return {t: int(store.scalar(f"SELECT COUNT(*) FROM {t}")) for t in tables}


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    opened = SqliteStore(tmp_path / "h.db")
    yield opened  # type: ignore[misc]
    opened.close()


def test_the_same_cycle_written_twice_is_refused_and_nothing_is_added(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    store.write_cycle(sid, [compose(sid, 1, 10)], [fill(10, "i1")], [], point(sid, 10))
    before = counts(store)
    with pytest.raises(DuplicateCycle, match="last stored cycle is 1"):
        store.write_cycle(sid, [compose(sid, 1, 10)], [fill(10, "i1")], [], point(sid, 10))
    assert counts(store) == before
    assert store.cycle_count(sid) == 1


def test_a_cycle_must_follow_the_last_stored_one(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    store.write_cycle(sid, [compose(sid, 1, 10)], [], [], None)
    with pytest.raises(DuplicateCycle, match="cycle 3"):
        store.write_cycle(sid, [compose(sid, 3, 30)], [], [], None)
    store.write_cycle(sid, [compose(sid, 2, 20)], [], [], None)
    assert store.cycle_count(sid) == 2


def test_a_fill_of_an_instruction_already_filled_is_refused(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    store.write_cycle(sid, [compose(sid, 1, 10)], [fill(10, "i1")], [], None)
    with pytest.raises(DuplicateCycle, match="already holds it"):
        store.write_cycle(sid, [compose(sid, 2, 20)], [fill(20, "i1")], [], None)
    assert [f.instruction_id for f in store.load_fills(sid)] == ["i1"]
    assert store.cycle_count(sid) == 1  # the whole cycle was rolled back


def test_one_record_per_cycle_and_kind(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    with pytest.raises(DuplicateCycle):
        store.write_cycle(sid, [compose(sid, 1, 10), compose(sid, 1, 10)], [], [], None)
    assert counts(store)["history_records"] == 0


def test_records_of_two_cycles_in_one_write_are_refused(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    with pytest.raises(ValueError, match="one cycle per write_cycle"):
        store.write_cycle(sid, [compose(sid, 1, 10), compose(sid, 2, 10)], [], [], None)


def test_failed_cycles_are_counted_apart(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=1)
    store.write_cycle(sid, [compose(sid, 1, 10)], [], [], point(sid, 10))
    store.write_cycle(sid, [compose(sid, 2, 20, kind="error")], [], [], None)
    store.write_cycle(sid, [compose(sid, 3, 20)], [], [], point(sid, 20))
    assert (store.cycle_count(sid), store.failed_cycle_count(sid)) == (3, 1)
    [summary] = store.summaries()
    assert (summary.cycles, summary.failed_cycles) == (3, 1)


# -- migration of an older database ---------------------------------------------------------


def v2_database(path: Path, rows: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    """A file as version 2 left it: its tables, the prompt and cache tables of old."""
    conn = sqlite3.connect(path)
    for step in schema._MIGRATIONS[:2]:
        assert isinstance(step, list)
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    config = UserRequest(trading=TradingConfig(strategy_name="Solo")).model_dump_json()
    conn.execute("INSERT INTO strategies VALUES ('s1', 'Solo', ?, 'running', NULL, 1, 1)", [config])
    for ts, (sid, kind, ref, payload) in enumerate(rows, start=1):
        conn.execute(
            "INSERT INTO history_records (ts, strategy_id, kind, reference_id, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            [ts * 10, sid, kind, ref, json.dumps(payload)],
        )
        if kind == "compose":
            conn.execute(
                "INSERT INTO equity (ts, strategy_id, cash, equity, realized_pnl, unrealized_pnl,"
                " fees_paid, gross_exposure, net_exposure) VALUES (?, ?, 1, 1, 0, 0, 0, 0, 0)",
                [ts * 10, sid],
            )
    conn.execute(
        "CREATE TABLE prompts (id INTEGER PRIMARY KEY, name TEXT, version INTEGER, text TEXT, "
        "created_ts INTEGER)"
    )
    conn.execute("INSERT INTO prompts VALUES (1, 'Solo', 1, 'buy dips', 5)")
    conn.execute("INSERT INTO prompts VALUES (2, 'Other', 1, 'sell rips', 6)")
    # a closed trade as older versions stored it: P&L % before fees
    conn.execute(
        "INSERT INTO trades (strategy_id, symbol, type, side, quantity, entry_price, exit_price,"
        " realized_pnl, realized_pnl_pct, fees, payload) "
        "VALUES ('s1', 'BTC/USDT', 'long', 'buy', 2, 100, 101, 2.0, 1.0, 3.0, '{}')"
    )
    conn.commit()
    conn.close()


def test_a_version_2_database_is_upgraded_with_its_cycles_and_prompts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    v2_database(
        path,
        [
            ("s1", "compose", "s1-000001", {"cycle": 1}),
            ("s1", "error", "s1-000002", {"cycle": 2}),
            ("s1", "compose", "s1-000003", {"cycle": 3}),
        ],
    )
    with SqliteStore(path) as store:
        assert store.schema_version == schema.SCHEMA_VERSION
        assert (store.cycle_count("s1"), store.failed_cycle_count("s1")) == (3, 1)
        assert store.last_cycle_ts("s1") == 30
        assert store.rows("SELECT cycle FROM equity ORDER BY id") == [{"cycle": 1}, {"cycle": 3}]
        from strategy_agent.trading_history.prompt_versions import list_prompt_versions

        assert [v.text for v in list_prompt_versions(store, "s1")] == ["buy dips"]
        # nothing lost: the prompt no strategy claims stays in the renamed table
        assert store.scalar("SELECT COUNT(*) FROM legacy_prompts") == 2
        # its P&L % is now net of fees, like every trade stored from v3 on: (2 - 3) / 200
        assert store.scalar("SELECT realized_pnl_pct FROM trades") == pytest.approx(-0.5)
        assert store.scalar(
            "SELECT json_extract(payload, '$.realized_pnl_pct') FROM trades"
        ) == pytest.approx(-0.5)
        store.write_cycle("s1", [compose("s1", 4, 40)], [], [], None)
        with pytest.raises(DuplicateCycle):
            store.write_cycle("s1", [compose("s1", 4, 40)], [], [], None)


def test_a_database_holding_duplicates_is_refused_clearly_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dup.db"
    # the double-cycle bug of earlier versions: cycle 1 recorded twice
    v2_database(
        path,
        [
            ("s1", "compose", "s1-000001", {"cycle": 1}),
            ("s1", "compose", "s1-000001", {"cycle": 1}),
        ],
    )
    with pytest.raises(ConfigurationError, match=r"holds duplicates.*nothing was changed"):
        SqliteStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM history_records").fetchone()[0] == 2
    assert "cycles" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


def test_delete_removes_cycles_leases_prompt_versions_and_orders(store: SqliteStore) -> None:
    from strategy_agent.trading_history.leases import acquire_lease, lease_holder
    from strategy_agent.trading_history.orders import OrderRecord, insert_order, orders_of
    from strategy_agent.trading_history.prompt_versions import (
        list_prompt_versions,
        save_prompt_version,
    )

    sid = store.create_strategy(UserRequest(), now_ms=1)
    store.write_cycle(sid, [compose(sid, 1, 10)], [], [], None)
    acquire_lease(store, sid, "me", now_ms=1, stale_after_ms=1000)
    save_prompt_version(store, sid, "hold", now_ms=1)
    insert_order(
        store,
        OrderRecord(
            client_order_id="sa-1", strategy_id=sid, compose_id=f"{sid}-000001",
            instruction_id="i1", exchange_id="binance", symbol="BTC/USDT", side="buy", qty=1.0,
            order_type="market", status="sent", created_ts=1, updated_ts=1,
        ),
    )  # fmt: skip
    store.delete_strategy(sid)
    assert orders_of(store, sid) == []
    assert store.cycle_count(sid) == 0
    assert lease_holder(store, sid) is None
    assert list_prompt_versions(store, sid) == []
