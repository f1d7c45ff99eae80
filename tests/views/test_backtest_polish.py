"""Backtest page wording: compact token counts, one "UTC" in a window, upload errors phrased
for the page, and the comparison's first columns."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from strategy_agent.backtest.window import DataSpec
from strategy_agent.errors import ConfigurationError
from strategy_agent.trading_history.runs import create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import backtest as bt
from strategy_agent.views import format as fmt
from strategy_agent.views import memo
from strategy_agent.views.backtest_compare import (
    COMPARISON_COLUMNS,
    LLM_COLUMNS,
    SAMPLE_COLUMNS,
    batch_comparison,
    shown_columns,
)
from tests.app.helpers import request, write_equity
from tests.backtest.helpers import SMALL_CSV

H = 3_600_000


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (950, "950"),
        (1_000, "1k"),
        (1_032, "1.03k"),
        (12_345, "12.3k"),
        (123_456, "123k"),
        (999_999, "1M"),
        (1_032_457, "1.03M"),
        (12_345_678, "12.3M"),
        (2_500_000_000, "2.5B"),
        (None, fmt.DASH),
    ],
)
def test_compact_counts_fit_a_tile(value: int | None, text: str) -> None:
    assert fmt.compact(value) == text


def test_a_batch_window_says_utc_once(tmp_path: Path) -> None:
    memo.clear()
    db = tmp_path / "b.db"
    with SqliteStore(db) as store:
        sid = store.create_strategy(request("EMA · backtest", "noop", ["BTC/USDT"]), 5)
    write_equity(db, sid, [10_000.0 + i for i in range(41)])
    with SqliteStore(db) as store:
        run = create_run(
            store, kind="backtest", strategy_id=sid, request=store.get_strategy(sid).request,
            data_source="simulated", data_hash="a" * 64, window_from_ms=0,
            window_to_ms=40 * H, batch_id="b1", now_ms=6,
        )  # fmt: skip
        finish_run(store, run.id, "done", now_ms=7)
        window = batch_comparison(store, "b1").window
    assert window == "1970-01-01 00:00 → 1970-01-02 16:00 UTC"


def _entries(*configs: tuple[str, list[str]]) -> list[bt.ConfigEntry]:
    return bt.entries_from_strategies(
        [
            bt.ConfigSource(name, name, request(name, "ema_crossover", syms))
            for name, syms in configs
        ]
    )


def test_symbols_without_an_upload_are_named_with_their_configs(db_path: Path) -> None:
    entries = _entries(("EMA", ["BTC/USDT", "ETH/USDT", "SOL/USDT"]), ("RSI", ["SOL/USDT"]))
    spec = DataSpec("csv", files=(("BTC/USDT", str(SMALL_CSV)),))
    with SqliteStore(db_path) as store, pytest.raises(ConfigurationError) as raised:
        bt.make_plan(store, entries, date(2025, 1, 1), date(2025, 1, 5), spec, 1)
    message = str(raised.value)
    assert message.startswith("No uploaded file for ETH/USDT (EMA); SOL/USDT (EMA, RSI): upload")
    assert "--data" not in message and "csv:" not in message


def test_files_without_a_symbol_for_several_symbols_ask_for_the_symbols(db_path: Path) -> None:
    entries = _entries(("EMA", ["BTC/USDT", "ETH/USDT"]))
    spec = DataSpec("csv", files=(("", str(SMALL_CSV)),))
    with SqliteStore(db_path) as store, pytest.raises(ConfigurationError) as raised:
        bt.make_plan(store, entries, date(2025, 1, 1), date(2025, 1, 5), spec, 1)
    assert str(raised.value).startswith(
        "The configs trade BTC/USDT, ETH/USDT: type the symbol of each uploaded file"
    )
    assert "--data" not in str(raised.value)


def test_the_comparison_shows_costs_and_notes_before_the_secondary_figures() -> None:
    everything, one = shown_columns(True), shown_columns(False)
    assert sorted(everything) == sorted(COMPARISON_COLUMNS)  # every column, none twice
    assert sorted(one) == sorted(set(COMPARISON_COLUMNS) - set(SAMPLE_COLUMNS))
    assert one[:9] == [
        "Config", "Return (%)", "Buy & hold (%)", "Sharpe", "Trades", "Fees (USDT)",
        "LLM tokens", "LLM cost (USD)", "Notes",
    ]  # fmt: skip
    rules = shown_columns(False, llm=False)
    assert sorted(rules) == sorted(set(one) - set(LLM_COLUMNS))
