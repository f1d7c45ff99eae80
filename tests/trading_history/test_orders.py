"""The orders table (schema v5): one row per client order id, final orders never change,
and the fills the ledger has not applied yet."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from strategy_agent.models import Fill, HistoryRecord, UserRequest
from strategy_agent.trading_history import schema
from strategy_agent.trading_history.orders import (
    OrderRecord,
    OrderRecordError,
    fill_applied,
    get_order,
    insert_order,
    orders_of,
    unapplied_fills,
    update_order,
)
from strategy_agent.trading_history.store import SqliteStore


@pytest.fixture
def store(db_path: Path):
    with SqliteStore(db_path) as opened:
        opened.create_strategy(UserRequest(), 0, strategy_id="s1")
        yield opened


def sent(client_id: str = "sa1", instruction_id: str = "c1:BTC/USDT", ts: int = 10) -> OrderRecord:
    return OrderRecord(
        client_order_id=client_id,
        strategy_id="s1",
        compose_id="c1",
        instruction_id=instruction_id,
        exchange_id="binance",
        symbol="BTC/USDT",
        side="buy",
        qty=0.01,
        order_type="market",
        status="sent",
        created_ts=ts,
        updated_ts=ts,
    )


def test_schema_5_has_the_orders_table_keyed_by_client_order_id(store: SqliteStore):
    assert store.schema_version == schema.SCHEMA_VERSION >= 5
    assert store.db.table("orders").pks == ["client_order_id"]


def test_a_version_4_database_gains_the_orders_table(db_path: Path):
    with SqliteStore(db_path) as old:
        old.db.execute("DROP TABLE orders")
        old.db.execute("PRAGMA user_version = 4")
        old.db.conn.commit()
    with SqliteStore(db_path) as upgraded:
        assert upgraded.schema_version == schema.SCHEMA_VERSION
        insert_order(upgraded, sent())
        assert get_order(upgraded, "sa1") == sent()


def test_each_status_change_is_written_and_read_back(store: SqliteStore):
    insert_order(store, sent())
    filled = sent().moved(
        "filled",
        20,
        exchange_order_id="1001",
        filled_qty=0.01,
        avg_price=80_000.0,
        fee=0.00001,
        fee_currency="BTC",
        fee_quote=0.8,
    )
    update_order(store, filled)

    assert get_order(store, "sa1") == filled
    assert get_order(store, "missing") is None
    assert orders_of(store, "s1", ("sent", "unknown")) == []
    assert orders_of(store, "s1") == [filled]


def test_an_order_or_an_instruction_is_recorded_once(store: SqliteStore):
    insert_order(store, sent())
    with pytest.raises(OrderRecordError, match="already recorded"):
        insert_order(store, sent())
    with pytest.raises(OrderRecordError):
        insert_order(store, sent(client_id="sa2"))  # same instruction, another id


def test_a_final_order_never_changes_status(store: SqliteStore):
    insert_order(store, sent())
    rejected = sent().moved("rejected", 20, reason="insufficient funds")
    update_order(store, rejected)
    with pytest.raises(OrderRecordError, match="already rejected"):
        update_order(store, rejected.moved("sent", 30))
    with pytest.raises(OrderRecordError, match="not recorded"):
        update_order(store, sent(client_id="nope"))
    assert get_order(store, "sa1") == rejected


def test_the_database_refuses_an_unknown_status(store: SqliteStore):
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute(
            "INSERT INTO orders (client_order_id, strategy_id, compose_id, instruction_id, "
            "exchange_id, symbol, side, qty, order_type, status, created_ts, updated_ts) "
            "VALUES ('x', 's1', 'c', 'i', 'binance', 'BTC/USDT', 'buy', 1, 'market', 'lost', 0, 0)"
        )


def test_unapplied_fills_are_the_filled_orders_missing_from_the_fills_table(store: SqliteStore):
    for n, status in enumerate(["filled", "partially_filled", "rejected", "unknown"]):
        order = sent(client_id=f"sa{n}", instruction_id=f"c1:{n}", ts=n)
        insert_order(store, order)
        filled = 0.01 if status.endswith("filled") else 0.0
        update_order(store, order.moved(status, n, filled_qty=filled, avg_price=80_000.0))

    assert [o.instruction_id for o in unapplied_fills(store, "s1")] == ["c1:0", "c1:1"]
    assert not fill_applied(store, "s1", "c1:0")

    fill = Fill(
        ts=1,
        strategy_id="s1",
        compose_id="c1",
        instruction_id="c1:0",
        symbol="BTC/USDT",
        side="buy",
        quantity=0.01,
        price=80_000.0,
        fee=0.8,
    )
    record = HistoryRecord(ts=1, kind="execution", reference_id="c1", payload={}, strategy_id="s1")
    store.write_cycle("s1", [record], [fill], [], None)

    assert fill_applied(store, "s1", "c1:0")
    assert [o.instruction_id for o in unapplied_fills(store, "s1")] == ["c1:1"]
