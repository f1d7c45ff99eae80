"""What the Backtest page compares and on which data: configs from strategies, prompt
versions and models; stored candles and uploaded CSV files; the plan and its summary."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from strategy_agent.backtest.window import DataSpec
from strategy_agent.errors import ConfigurationError
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.candle_store import CandleSeries, write_candles
from strategy_agent.trading_history.prompt_versions import save_prompt_version
from strategy_agent.trading_history.runs import create_run
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import backtest as bt
from tests.app.helpers import request
from tests.backtest.helpers import SMALL_CSV

LLM = UserRequest.model_validate(
    {
        "llm": {"provider": "openai", "model_id": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
        "trading": {"strategy_name": "Writer", "symbols": ["BTC/USDT"]},
    }
)


def test_backtest_runs_are_not_offered_as_configs_and_names_stay_apart(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        first = store.create_strategy(request("Same", "ema_crossover"), 1)
        second = store.create_strategy(request("Same", "rsi_reversion"), 2)
        run_row = store.create_strategy(request("Old · backtest", "ema_crossover"), 3)
        create_run(
            store, kind="backtest", strategy_id=run_row, request=request("x", "ema_crossover"),
            data_source="simulated", now_ms=4,
        )  # fmt: skip
        sources = bt.config_sources(store)
    assert [s.strategy_id for s in sources] == [second, first]  # newest first, no run
    labels = [e.label for e in bt.entries_from_strategies(sources)]
    assert labels == [f"Same ({second})", f"Same ({first})"]


def test_prompt_versions_become_configs_of_one_strategy(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(LLM, 1)
        save_prompt_version(store, sid, "Buy dips.", 2)
        save_prompt_version(store, sid, "Follow the trend.", 3)
        source = bt.config_sources(store)[0]
        assert [v for v, _ in bt.prompt_version_choices(store, sid)] == [2, 1]
        entries = bt.entries_from_prompt_versions(store, source, [1, 2])
        with pytest.raises(ConfigurationError, match="no prompt version v9"):
            bt.entries_from_prompt_versions(store, source, [9])
        rule = store.create_strategy(request("Rule", "ema_crossover"), 4)
        rule_source = next(s for s in bt.config_sources(store) if s.strategy_id == rule)
        with pytest.raises(ConfigurationError, match="reads no prompt"):
            bt.entries_from_prompt_versions(store, rule_source, [1])
    assert [e.label for e in entries] == ["Writer · prompt v1", "Writer · prompt v2"]
    assert [e.request.trading.custom_prompt for e in entries] == ["Buy dips.", "Follow the trend."]
    assert all(e.request.llm == LLM.llm for e in entries)


def test_models_of_other_strategies_and_the_built_in_rules_run_one_config(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.create_strategy(LLM, 1)
        store.create_strategy(request("Rule", "ema_crossover", ["ETH/USDT"]), 2)
        sources = bt.config_sources(store)
    rule = next(s for s in sources if s.name == "Rule")
    choices = bt.model_choices([rule, *sources], ["buy_and_hold", "ema_crossover"])
    labels = [c.label for c in choices]
    assert labels == ["builtin/ema_crossover", "openai/gpt-4o-mini", "builtin/buy_and_hold"]
    entries = bt.entries_from_models(rule, choices[:2])
    assert [e.label for e in entries] == [
        "Rule · builtin/ema_crossover",
        "Rule · openai/gpt-4o-mini",
    ]
    assert entries[1].request.llm.model_id == "gpt-4o-mini"
    assert entries[1].request.trading == rule.request.trading  # only the model changes


def test_stored_candles_are_offered_with_their_span_and_replayed(db_path: Path) -> None:
    hour = 3_600_000
    start = 1_735_689_600_000  # 2025-01-01
    rows = [(start + i * hour, 100.0, 110.0, 90.0, 100.0 + i % 7, 5.0) for i in range(200)]
    with SqliteStore(db_path) as store:
        write_candles(store, CandleSeries("okx", "BTC/USDT", "1h"), rows)
        choices = bt.data_choices(store)
        assert [c.label for c in choices] == ["Simulated market", "Stored candles · okx"]
        assert choices[1].detail == (
            "BTC/USDT 1h: 200 candles, 2025-01-01 00:00 to 2025-01-09 07:00 UTC"
        )
        rule = request("Rule", "ema_crossover", ["BTC/USDT"])
        trading = rule.trading.model_copy(update={"lookback": 48})
        entry = bt.entries_from_strategies(
            [bt.ConfigSource("x", "Rule", rule.model_copy(update={"trading": trading}))]
        )
        plan = bt.make_plan(store, entry, date(2025, 1, 1), date(2025, 1, 5), choices[1].spec, 1)
    summary = bt.plan_summary(plan)
    assert summary.window == "2025-01-03 00:00 to 2025-01-05 23:00 UTC (72 candles of 1h)"
    assert summary.data.startswith("store:okx (data sha256 ") and summary.calls == 0


def test_an_uploaded_csv_is_kept_by_its_hash_and_replayed(tmp_path: Path, db_path: Path) -> None:
    content = SMALL_CSV.read_bytes()
    saved = bt.save_upload(tmp_path, "My BTC 1h.csv", content)
    assert saved == bt.save_upload(tmp_path, "My BTC 1h.csv", content)  # one file
    assert saved.parent == tmp_path / "uploads" and saved.read_bytes() == content
    with pytest.raises(ConfigurationError, match="is empty"):
        bt.save_upload(tmp_path, "empty.csv", b"")
    assert bt.guess_symbol("My BTC 1h.csv", ["ETH/USDT", "BTC/USDT"]) == "BTC/USDT"
    assert bt.guess_symbol("candles.csv", ["BTC/USDT"]) == ""
    rule = request("Rule", "ema_crossover", ["BTC/USDT"])
    trading = rule.trading.model_copy(update={"lookback": 48})
    entry = bt.entries_from_strategies(
        [bt.ConfigSource("x", "Rule", rule.model_copy(update={"trading": trading}))]
    )
    spec = bt.csv_spec([("", saved)])
    with SqliteStore(db_path) as store:
        plan = bt.make_plan(store, entry, date(2025, 1, 1), date(2025, 1, 31), spec, 1)
        with pytest.raises(ConfigurationError, match="last day is before the first"):
            bt.make_plan(store, entry, date(2025, 1, 5), date(2025, 1, 4), spec, 1)
    summary = bt.plan_summary(plan)
    assert "the window ends at 2025-01-10 23:00 UTC: the last candle in the data" in summary.notes
    assert summary.runs == 1 and summary.estimate_rows[0]["Prices"] == "built-in rule"


def test_a_key_typed_this_session_goes_with_its_strategy_into_every_mode_and_the_plan(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import SecretStr

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(db_path.parent)  # no .streamlit/secrets.toml either
    typed = SecretStr("sk-typed")
    with SqliteStore(db_path) as store:
        sid = store.create_strategy(LLM, 1)
        rule = store.create_strategy(request("Rule", "ema_crossover"), 2)
        save_prompt_version(store, sid, "Buy dips.", 3)
        sources = bt.config_sources(store, {sid: typed})
        source = next(s for s in sources if s.strategy_id == sid)
        rule_source = next(s for s in sources if s.strategy_id == rule)
        entries = [
            *bt.entries_from_strategies(sources),
            *bt.entries_from_prompt_versions(store, source, [1]),
            *bt.entries_from_models(rule_source, bt.model_choices(sources, ["buy_and_hold"])),
        ]
        keys = {e.label: e.api_key for e in entries}
        assert keys == {
            "Writer": typed, "Rule": None, "Writer · prompt v1": typed,
            "Rule · openai/gpt-4o-mini": typed,  # the model's key comes with it
            "Rule · builtin/ema_crossover": None, "Rule · builtin/buy_and_hold": None,
        }  # fmt: skip
        assert "sk-typed" not in repr(entries) + repr(sources)
        writer = [e for e in entries if e.label == "Writer"]
        simulated = DataSpec("simulated")
        plan = bt.make_plan(store, writer, date(2025, 1, 6), date(2025, 1, 6), simulated, 2)
        assert {run.api_key for run in plan.runs} == {typed}
        with pytest.raises(ConfigurationError, match="no API key for openai"):
            bt.make_plan(store, bt.entries_from_strategies(bt.config_sources(store))[1:],
                         date(2025, 1, 6), date(2025, 1, 6), simulated, 1)  # fmt: skip
