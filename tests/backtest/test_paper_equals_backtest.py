"""A paper run and a backtest over the same candles make the same trades (one fill model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.cli import main
from strategy_agent.trading_history.runs import list_runs
from strategy_agent.trading_history.store import SqliteStore
from tests.backtest.helpers import SMALL_CSV, builtin_config, trades_of


def paper_and_backtest(db_path: Path) -> tuple[str, str]:
    with SqliteStore(db_path) as store:
        [run] = list_runs(store, kind="backtest")
        paper = next(s.id for s in store.list_strategies() if s.id != run.strategy_id)
    return paper, run.strategy_id


def assert_same_trades(db_path: Path) -> None:
    paper, backtest = paper_and_backtest(db_path)
    with SqliteStore(db_path) as store:
        paper_trades, backtest_trades = trades_of(store, paper), trades_of(store, backtest)
        assert len(paper_trades) >= 2  # something to compare
        assert paper_trades == backtest_trades  # symbol, side, quantity, price, time
        equity = [[(p.ts, p.equity) for p in store.equity_series(sid)] for sid in (paper, backtest)]
        assert equity[0] == equity[1]


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_paper_on_the_simulated_market_equals_its_backtest(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str], fill_at: str
) -> None:
    config = builtin_config(
        tmp_path / "ema.toml",
        "EMA",
        extra=f'[exchange]\nfill_at = "{fill_at}"',
        symbols='["BTC/USDT", "ETH/USDT"]',
    )
    # paper: the first decision on the close of 2025-01-03 00:00 (after a full lookback of
    # 48), 96 cycles to the 2025-01-06 23:00 candle; the backtest of the same days
    assert main(["run", "--config", str(config), "--cycles", "96", "--db", str(db_path),
                 "--quiet"]) == 0  # fmt: skip
    assert main(["backtest", "--config", str(config), "--from", "2025-01-01", "--to",
                 "2025-01-06", "--db", str(db_path)]) == 0  # fmt: skip
    assert "2025-01-03 00:00 to 2025-01-06 23:00 UTC (96 candles" in capsys.readouterr().out
    assert_same_trades(db_path)


def test_a_csv_paper_replay_equals_its_backtest_at_the_next_open(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = builtin_config(tmp_path / "rsi.toml", "RSI", "rsi_reversion")
    # both decide first on the candle after a full lookback (2025-01-03 00:00) and run to
    # the end of the file
    assert main(["run", "--config", str(config), "--csv", f"BTC/USDT={SMALL_CSV}", "--cycles",
                 "1000", "--db", str(db_path), "--quiet"]) == 0  # fmt: skip
    assert main(["backtest", "--config", str(config), "--from", "2025-01-01", "--to",
                 "2025-01-31", "--data", f"csv:{SMALL_CSV}", "--db", str(db_path)]) == 0  # fmt: skip
    capsys.readouterr()
    assert_same_trades(db_path)
    paper, backtest = paper_and_backtest(db_path)
    with SqliteStore(db_path) as store:
        assert store.cycle_count(paper) == store.cycle_count(backtest) == 240 - 48
        sources = {
            r["price_source"]
            for sid in (paper, backtest)
            for record in store.records(sid, kind="execution", limit=500)
            for r in record.payload["results"]
            if r["status"] == "filled"
        }
    assert sources == {"next_open"}
