"""The comparison table: means with bootstrap intervals, marks, one sample; the in_sample column."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from strategy_agent.backtest.compare import compare_configs, comparison_lines
from strategy_agent.models import ModelConfig, UserRequest
from strategy_agent.trading_history import schema
from strategy_agent.trading_history.runs import create_run, get_run
from strategy_agent.trading_history.store import SqliteStore

LLM = UserRequest(llm=ModelConfig(provider="openai", model_id="m"))


def figures(label: str, returns: list[float], sharpe: list[float], **run: Any) -> list[Any]:
    out = []
    for value, ratio in zip(returns, sharpe, strict=True):
        metrics = SimpleNamespace(
            net_return_pct=value, sharpe=ratio, buy_and_hold_return_pct=3.0,
            max_drawdown_pct=2.0, trades=12, fees_paid=5.0,
        )  # fmt: skip
        stored = SimpleNamespace(
            cost_usd=0.25, tokens=1000, request=LLM, in_sample=None, status="done",
            status_reason=None,
        )  # fmt: skip
        for key, item in run.items():
            setattr(stored, key, item)
        out.append(
            SimpleNamespace(
                outcome=SimpleNamespace(
                    label=label, run=stored, cycles=10, window_cycles=10, fallback_cycles=0
                ),
                metrics=metrics,
            )
        )
    return out


def row_of(lines: list[str], label: str) -> str:
    return next(line for line in lines if line.startswith(label + " "))


def test_samples_show_mean_and_interval_and_overlapping_configs_are_marked() -> None:
    runs = (
        figures("A", [1.0, 2.0, 3.0], [0.5, 0.6, 0.7])
        + figures("B", [2.5, 3.5, 4.5], [0.9, 1.0, 1.1])
        + figures("C", [40.0, 41.0, 42.0], [3.0, 3.1, 3.2])
        + figures("D", [7.0], [1.5], in_sample="in-sample for this model: ...")
    )
    lines = comparison_lines(compare_configs(runs))  # type: ignore[arg-type]
    a, b, c, d = (row_of(lines, name) for name in "ABCD")
    assert "+2.00 [" in a and "not distinguishable from B" in a
    assert "not distinguishable from A" in b
    assert "+41.00 [+40.00, +42.00]" in c and "distinguishable from the other" in c
    assert "+7.00" in d and "[" not in d.split("+7.00")[1].split()[0]
    assert "one sample" in d and "in-sample for this model" in d
    assert "$0.7500" in a and "3,000" in a  # dollars and tokens summed over the samples
    assert lines[-1].startswith("return % and Sharpe of several samples: mean [bootstrap 95 %")


def test_a_version_6_database_gains_the_in_sample_column(db_path: Path) -> None:
    with SqliteStore(db_path) as old:
        sid = old.create_strategy(UserRequest(), now_ms=0)
        kept = create_run(
            old, kind="backtest", strategy_id=sid, request=UserRequest(),
            data_source="simulated", now_ms=1,
        )  # fmt: skip
        old.db.execute("ALTER TABLE runs DROP COLUMN in_sample")
        old.db.execute("PRAGMA user_version = 6")
        old.db.conn.commit()
    with SqliteStore(db_path) as upgraded:
        assert upgraded.schema_version == schema.SCHEMA_VERSION >= 7
        assert get_run(upgraded, kept.id).in_sample is None
        marked = create_run(
            upgraded, kind="backtest", strategy_id=sid, request=UserRequest(),
            data_source="simulated", now_ms=2, in_sample="in-sample for this model: x",
        )  # fmt: skip
        assert get_run(upgraded, marked.id).in_sample == "in-sample for this model: x"


def test_a_mean_count_of_samples_has_one_decimal_and_a_count_none() -> None:
    from strategy_agent.backtest.compare import count_text

    assert [count_text(v) for v in (13 / 3, 6.0, 1204.0, 0.0)] == ["4.3", "6", "1,204", "0"]
