"""The Backtest page's comparison: one row per config, sample intervals and every mark."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.trading_history.runs import create_run, finish_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import memo
from strategy_agent.views.backtest_compare import (
    COMPARISON_COLUMNS,
    batch_comparison,
    batch_label,
    batches,
)
from tests.app.helpers import request, write_equity

H = 3_600_000


def sample_run(
    db: Path,
    config: str,
    final_return_pct: float,
    sample: int,
    samples: int,
    *,
    status: str = "done",
    reason: str | None = None,
    in_sample: str | None = None,
) -> str:
    """A run of ``config`` (sample ``sample`` of ``samples``) whose equity rises steadily to
    ``final_return_pct`` over 40 hourly cycles; stored in batch ``b1``."""
    suffix = " · backtest" + (f" #{sample + 1}/{samples}" if samples > 1 else "")
    with SqliteStore(db) as store:
        sid = store.create_strategy(request(config + suffix, "noop", ["BTC/USDT"]), 5)
    step = 10_000.0 * final_return_pct / 100 / 39
    wobble = [(-1) ** i * 3.0 for i in range(40)]  # returns vary: Sharpe is defined
    write_equity(db, sid, [10_000.0 + step * i + wobble[i] * (0 < i < 39) for i in range(40)])
    with SqliteStore(db) as store:
        run = create_run(
            store, kind="backtest", strategy_id=sid, request=store.get_strategy(sid).request,
            data_source="simulated", data_hash="c" * 64, window_from_ms=0, window_to_ms=39 * H,
            batch_id="b1", sample_index=sample, now_ms=10 + sample, in_sample=in_sample,
        )  # fmt: skip
        finish_run(store, run.id, status, now_ms=99, reason=reason)  # type: ignore[arg-type]
    return sid


@pytest.fixture
def db(tmp_path: Path) -> Path:
    memo.clear()
    return tmp_path / "compare.db"


def test_samples_give_a_mean_and_interval_and_overlapping_configs_are_marked(db: Path) -> None:
    for sample, value in enumerate((1.0, 2.0, 3.0)):
        sample_run(db, "A", value, sample, 3)
    for sample, value in enumerate((2.5, 3.5, 4.5)):
        sample_run(db, "B", value, sample, 3)
    for sample, value in enumerate((40.0, 41.0, 42.0)):
        sample_run(db, "C", value, sample, 3, in_sample="in-sample for this model: ...")
    sample_run(db, "D", 7.0, 0, 1, status="stopped", reason="budget of $1.00 reached: $1.02")
    with SqliteStore(db) as store:
        comparison = batch_comparison(store, "b1")
        (batch,) = batches(store)
    assert batch.runs == 10 and batch.running == 0
    assert "10 runs · simulated · 1970-01-01 00:00 UTC → 1970-01-02 15:00 UTC" in batch_label(batch)
    table = comparison.table.set_index("Config")
    assert list(comparison.table.columns) == COMPARISON_COLUMNS
    assert list(table.index) == ["A", "B", "C", "D"]
    assert table.loc["A", "Return (%)"] == pytest.approx(2.0, abs=1e-9)
    assert table.loc["A", "Samples"] == 3 and table.loc["D", "Samples"] == 1
    assert table.loc["A", "Return 95 % interval"].startswith("[+1.")
    assert table.loc["A", "Notes"] == "not distinguishable from B; too few trades to judge"
    assert table.loc["B", "Notes"].startswith("not distinguishable from A")
    assert table.loc["C", "Notes"] == (
        "distinguishable from the other sampled configs; in-sample for this model; "
        "too few trades to judge"
    )
    assert table.loc["D", "Return 95 % interval"] == "one sample"
    assert (
        table.loc["D", "Notes"]
        == "one sample; too few trades to judge; stopped: budget of $1.00 reached"
    )
    assert table.loc["A", "LLM tokens"] is None  # a built-in rule spends nothing
    runs = comparison.runs
    assert sorted(runs[runs["Config"] == "A"]["Sample"]) == ["1 of 3", "2 of 3", "3 of 3"]
    assert comparison.sampled and len(comparison.curves) == 10
    assert set(comparison.curves) >= {"A #1", "A #3", "D #1"}


def test_a_single_sampled_config_says_how_many_samples_and_no_comparison(db: Path) -> None:
    for sample, value in enumerate((1.0, 2.0)):
        sample_run(db, "Only", value, sample, 2)
    with SqliteStore(db) as store:
        table = batch_comparison(store, "b1").table.set_index("Config")
    assert table.loc["Only", "Notes"].startswith("2 samples")
    assert table.loc["Only", "Sharpe 95 % interval"].startswith("[")
