"""Each cycle records its data window: the last closed candle per symbol it saw."""

from __future__ import annotations

from pathlib import Path

from strategy_agent.factory import open_runtime
from strategy_agent.models import ModelConfig, ReplayConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.store import SqliteStore
from tests.backtest.helpers import H, write_gapped_csv


def test_each_compose_record_holds_the_last_closed_candle_per_symbol(db_path: Path) -> None:
    request = UserRequest(trading=TradingConfig(symbols=["BTC/USDT", "ETH/USDT"], lookback=30))
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(request, 0)
        runtime = open_runtime(store, sid)
        reports = [runtime.step() for _ in range(3)]
        records = list(reversed(store.records(sid, kind="compose", limit=3)))
        features = list(reversed(store.records(sid, kind="features", limit=3)))
    for report, record, feature in zip(reports, records, features, strict=True):
        window = record.payload["data_window"]
        assert window == {"BTC/USDT": report.ts - H, "ETH/USDT": report.ts - H}
        # the same candles the features record drew from, all closed at the cycle's time
        assert window == {s: c["ts"] for s, c in feature.payload["candles"].items()}
        assert all(ts + H <= record.ts for ts in window.values())


def test_a_replay_records_the_window_it_saw(db_path: Path, tmp_path: Path) -> None:
    btc = write_gapped_csv(tmp_path / "btc.csv", bars=60)
    request = UserRequest(
        llm=ModelConfig(provider="builtin", model_id="buy_and_hold"),
        trading=TradingConfig(symbols=["BTC/USDT"], lookback=30),
        replay=ReplayConfig(source="csv", csv_files={"BTC/USDT": str(btc)}),
    )
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(request, 0)
        report = open_runtime(store, sid).step()
        (record,) = store.records(sid, kind="compose", limit=1)
    assert record.payload["data_window"] == {"BTC/USDT": report.ts - H}
