"""The runs table (schema v6), the tokens column of compose records and ``llm_usage``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import Candle, HistoryRecord, InstrumentRef, ModelConfig, UserRequest
from strategy_agent.trading_history import schema
from strategy_agent.trading_history.runs import (
    candles_sha256,
    create_run,
    file_sha256,
    finish_run,
    get_run,
    list_runs,
    record_spend,
    runs_of_strategy,
)
from strategy_agent.trading_history.store import SqliteStore

START, END = 1_735_689_600_000, 1_751_241_600_000  # 2025-01-01, 2025-06-30 UTC


def compose(sid: str, cycle: int, **payload: Any) -> HistoryRecord:
    return HistoryRecord(
        ts=cycle * 1000,
        kind="compose",
        reference_id=f"{sid}-{cycle:06d}",
        payload={"cycle": cycle, **payload},
        strategy_id=sid,
    )


@pytest.fixture
def store(db_path: Path) -> SqliteStore:
    return SqliteStore(db_path)


def test_compose_tokens_are_stored_as_a_column_and_summed(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=0)
    store.write_cycle(
        sid,
        [compose(sid, 1, prompt_tokens=1200, completion_tokens=80, cost_usd=0.01)],
        [],
        [],
        None,
    )
    store.write_cycle(
        sid, [compose(sid, 2, prompt_tokens=1100, completion_tokens=None)], [], [], None
    )
    store.write_cycle(sid, [compose(sid, 3)], [], [], None)  # a built-in rule: no usage
    tokens = store.rows(
        "SELECT tokens FROM history_records WHERE strategy_id = ? ORDER BY id", [sid]
    )
    assert [row["tokens"] for row in tokens] == [1280, 1100, None]
    assert store.llm_usage(sid) == (2380, pytest.approx(0.01))
    other = store.create_strategy(UserRequest(), now_ms=0)
    assert store.llm_usage(other) == (0, None)


def test_booleans_are_not_token_counts(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=0)
    store.write_cycle(sid, [compose(sid, 1, prompt_tokens=True, completion_tokens=7)], [], [], None)
    assert store.scalar("SELECT tokens FROM history_records") == 7


def test_a_version_5_database_gains_runs_and_backfilled_tokens(db_path: Path) -> None:
    with SqliteStore(db_path) as old:
        sid = old.create_strategy(UserRequest(), now_ms=0)
        old.write_cycle(
            sid, [compose(sid, 1, prompt_tokens=900, completion_tokens=50)], [], [], None
        )
        old.write_cycle(
            sid, [compose(sid, 2, prompt_tokens=None, completion_tokens=None)], [], [], None
        )
        old.db.execute("DROP INDEX idx_history_usage")
        old.db.execute("ALTER TABLE history_records DROP COLUMN tokens")
        old.db.execute("DROP TABLE runs")
        old.db.execute("PRAGMA user_version = 5")
        old.db.conn.commit()
    with SqliteStore(db_path) as upgraded:
        assert upgraded.schema_version == schema.SCHEMA_VERSION >= 6
        assert upgraded.llm_usage(sid) == (950, None)
        rows = upgraded.rows("SELECT tokens FROM history_records ORDER BY id")
        assert [row["tokens"] for row in rows] == [950, None]
        run = create_run(
            upgraded,
            kind="backtest",
            strategy_id=sid,
            request=UserRequest(),
            data_source="simulated",
            now_ms=5,
        )
        assert get_run(upgraded, run.id).status == "running"


def test_a_run_is_created_finished_once_and_read_back(store: SqliteStore) -> None:
    request = UserRequest(llm=ModelConfig(provider="openai", model_id="gpt-4o-mini"))
    sid = store.create_strategy(request, now_ms=0)
    run = create_run(
        store,
        kind="backtest",
        strategy_id=sid,
        request=request,
        data_source="csv:btc.csv",
        data_hash="ab" * 32,
        window_from_ms=START,
        window_to_ms=END,
        sample_index=2,
        batch_id="b1",
        now_ms=10,
    )
    assert (run.status, run.tokens, run.cost_usd, run.finished_ts) == ("running", 0, None, None)
    assert run.request == request and run.sample_index == 2 and not run.finished
    record_spend(store, run.id, 1_500, 0.002)
    assert (get_run(store, run.id).tokens, get_run(store, run.id).cost_usd) == (1_500, 0.002)
    done = finish_run(
        store, run.id, "stopped", now_ms=99, reason="budget reached", tokens=3_000, cost_usd=0.004
    )
    assert (done.status, done.status_reason, done.finished_ts) == ("stopped", "budget reached", 99)
    assert (done.tokens, done.cost_usd, done.window_to_ms) == (3_000, 0.004, END)
    assert done.finished
    with pytest.raises(ConfigurationError, match="already ended"):
        finish_run(store, run.id, "done", now_ms=100)
    with pytest.raises(ConfigurationError, match="already ended"):
        record_spend(store, run.id, 1, 0.0)
    assert get_run(store, run.id) == done


def test_runs_are_listed_by_kind_batch_and_strategy(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=0)
    made = [
        create_run(
            store,
            kind=kind,
            strategy_id=sid,
            request=UserRequest(),
            data_source="simulated",
            now_ms=ts,
            batch_id=batch,
        )
        for ts, (kind, batch) in enumerate(
            [("backtest", "b1"), ("paper", None), ("backtest", "b1")]
        )
    ]
    assert [r.id for r in list_runs(store)] == [made[2].id, made[1].id, made[0].id]
    assert [r.id for r in list_runs(store, kind="paper")] == [made[1].id]
    assert [r.id for r in list_runs(store, batch_id="b1")] == [made[2].id, made[0].id]
    assert len(list_runs(store, limit=1)) == 1
    assert len(runs_of_strategy(store, sid)) == 3


def test_deleting_the_strategy_deletes_its_runs(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=0)
    create_run(
        store,
        kind="backtest",
        strategy_id=sid,
        request=UserRequest(),
        data_source="simulated",
        now_ms=1,
    )
    store.delete_strategy(sid)
    assert store.scalar("SELECT COUNT(*) FROM runs") == 0


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"kind": "dry"}, "unknown run kind"),
        ({"sample_index": -1}, "sample_index"),
        ({"window_from_ms": END, "window_to_ms": START}, "before it starts"),
        ({"strategy_id": "nope"}, "no strategy"),
        ({"data_source": " "}, "data source"),
    ],
)
def test_bad_runs_are_refused_clearly(
    store: SqliteStore, changes: dict[str, Any], words: str
) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=0)
    arguments: dict[str, Any] = {
        "kind": "backtest",
        "strategy_id": sid,
        "request": UserRequest(),
        "data_source": "simulated",
        "now_ms": 1,
        **changes,
    }
    with pytest.raises(ConfigurationError, match=words):
        create_run(store, **arguments)
    assert store.scalar("SELECT COUNT(*) FROM runs") == 0


def test_an_existing_run_id_is_refused(store: SqliteStore) -> None:
    sid = store.create_strategy(UserRequest(), now_ms=0)
    create_run(
        store,
        kind="paper",
        strategy_id=sid,
        request=UserRequest(),
        data_source="simulated",
        now_ms=1,
        run_id="r1",
    )
    with pytest.raises(ConfigurationError, match="already exists"):
        create_run(
            store,
            kind="paper",
            strategy_id=sid,
            request=UserRequest(),
            data_source="simulated",
            now_ms=1,
            run_id="r1",
        )


def test_a_config_holding_a_secret_is_never_stored(store: SqliteStore, db_path: Path) -> None:
    secret = "sk-run-secret-123456"
    sid = store.create_strategy(UserRequest(), now_ms=0)
    leaky = UserRequest(
        llm=ModelConfig(provider="openai", model_id="m", api_key=SecretStr(secret)),
    )
    leaky = leaky.model_copy(
        update={"trading": leaky.trading.model_copy(update={"custom_prompt": f"key {secret}"})}
    )
    with pytest.raises(ConfigurationError, match="secret"):
        create_run(
            store,
            kind="backtest",
            strategy_id=sid,
            request=leaky,
            data_source="simulated",
            now_ms=1,
        )
    keyed = UserRequest(llm=ModelConfig(provider="openai", model_id="m", api_key=SecretStr(secret)))
    run = create_run(
        store, kind="backtest", strategy_id=sid, request=keyed, data_source="simulated", now_ms=1
    )
    assert secret not in json.dumps(store.rows("SELECT config FROM runs WHERE id = ?", [run.id]))
    store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
    for path in db_path.parent.glob(db_path.name + "*"):
        assert secret.encode() not in path.read_bytes()


def candle(ts: int, close: float, symbol: str = "BTC/USDT") -> Candle:
    return Candle(
        ts=ts,
        instrument=InstrumentRef(symbol=symbol),
        open=close,
        high=close + 1,
        low=close - 1,
        close=close,
        volume=3.0,
        interval="1h",
    )


def test_candle_hash_changes_with_any_price_symbol_or_order() -> None:
    served = [candle(0, 100.0), candle(3_600_000, 101.0)]
    same = candles_sha256([candle(0, 100.0), candle(3_600_000, 101.0)])
    assert candles_sha256(served) == same and len(same) == 64
    assert candles_sha256([candle(0, 100.0), candle(3_600_000, 101.000001)]) != same
    assert candles_sha256([candle(0, 100.0, "ETH/USDT"), candle(3_600_000, 101.0)]) != same
    assert candles_sha256(list(reversed(served))) != same


def test_file_hash_is_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "btc.csv"
    path.write_bytes(b"ts,open,high,low,close,volume\n0,1,2,0.5,1.5,10\n")
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ConfigurationError, match="cannot read"):
        file_sha256(tmp_path / "missing.csv")
