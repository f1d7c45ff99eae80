"""``python -m strategy_agent backtest`` end to end, offline: simulated, CSV, N LLM samples."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from strategy_agent.cli import main
from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS
from strategy_agent.trading_history.runs import file_sha256, list_runs
from strategy_agent.trading_history.store import SqliteStore
from tests.backtest.helpers import SMALL_CSV, H, builtin_config, trades_of
from tests.fakes.fake_llm_server import FakeLlmServer, varied_replies

KEY_ENV = "FAKE_LLM_KEY"


def llm_config(path: Path, server: FakeLlmServer, name: str = "LLM", extra: str = "") -> Path:
    path.write_text(
        f'[llm]\nprovider = "openai"\nmodel_id = "fake-gpt"\napi_base = "{server.api_base}"\n'
        f'api_key_env = "{KEY_ENV}"\ntemperature = 0.7\ntimeout_s = 10\n'
        f"input_cost_per_mtok = 100.0\noutput_cost_per_mtok = 400.0\n{extra}\n"
        f'[trading]\nstrategy_name = "{name}"\nsymbols = ["BTC/USDT"]\ninterval = "1h"\n'
        f"lookback = 48\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def varied_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlmServer]:
    """A fake LLM whose replies differ from call to call (as samples at temperature > 0 do)."""
    monkeypatch.setenv(KEY_ENV, "sk-test")
    server = FakeLlmServer(auto_reply=varied_replies(), count_usage=True).start()
    try:
        yield server
    finally:
        server.stop()


def backtest(*args: str) -> int:
    return main(["backtest", *args])


def test_two_builtin_configs_on_the_simulated_market(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = builtin_config(tmp_path / "a.toml", "EMA", "ema_crossover")
    b = builtin_config(tmp_path / "b.toml", "RSI", "rsi_reversion")
    code = backtest(
        "--config", str(a), "--config", str(b), "--from", "2025-01-03", "--to", "2025-01-09",
        "--db", str(db_path),
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "cost estimate" not in out  # built-in rules cost nothing: no question asked
    table = out[out.index("config  ") :].splitlines()
    assert re.match(
        r"config\s+samples\s+return %\s+buy&hold %\s+Sharpe\s+max DD %\s+trades", table[0]
    )
    rows = {line.split()[0]: line for line in table[2:4]}
    assert set(rows) == {"EMA", "RSI"} and all("one sample" in r for r in rows.values())
    assert "336/336 cycles" in err and "done" in err  # 2 runs x 168 candles, to the end

    with SqliteStore(db_path) as store:
        runs = list_runs(store, kind="backtest")
        assert len(runs) == 2 and len({r.batch_id for r in runs}) == 1
        first, last = DEFAULT_ORIGIN_MS + 48 * H, DEFAULT_ORIGIN_MS + (9 * 24 - 1) * H
        for run in runs:
            assert (run.status, run.data_source, run.sample_index) == ("done", "simulated", 0)
            assert (run.window_from_ms, run.window_to_ms) == (first, last)
            assert run.data_hash and len(run.data_hash) == 64 and run.in_sample is None
            assert store.cycle_count(run.strategy_id) == 168
            assert store.last_cycle_ts(run.strategy_id) == last + H
            row = store.get_strategy(run.strategy_id)  # an ordinary strategy every page shows
            assert row.status == "stopped" and row.status_reason == "backtest done"
            assert row.request.trading.strategy_name.endswith("· backtest")
        assert {runs[0].data_hash} == {r.data_hash for r in runs}  # the same candles


def test_two_configs_on_a_csv_fill_at_the_next_open(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = builtin_config(tmp_path / "a.toml", "EMA", "ema_crossover")
    b = builtin_config(tmp_path / "b.toml", "Hold", "buy_and_hold")
    code = backtest(
        "--config", str(a), "--config", str(b), "--from", "2025-01-01", "--to", "2025-01-31",
        "--data", f"csv:{SMALL_CSV}", "--db", str(db_path),
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    # the data ends on 2025-01-10 23:00: the window stops there, and says so
    assert "the window ends at 2025-01-10 23:00 UTC: the last candle in the data" in out
    with SqliteStore(db_path) as store:
        runs = {r.request.llm.model_id: r for r in list_runs(store, kind="backtest")}
        assert {r.data_hash for r in runs.values()} == {file_sha256(SMALL_CSV)}
        assert {r.data_source for r in runs.values()} == {f"csv:{SMALL_CSV}"}
        hold = runs["buy_and_hold"]
        assert hold.request.replay is not None
        assert hold.request.replay.csv_files == {"BTC/USDT": str(SMALL_CSV)}
        [execution] = [
            r
            for r in reversed(store.records(hold.strategy_id, kind="execution", limit=500))
            if r.payload["results"]
        ][:1]
        [result] = execution.payload["results"]
        assert result["price_source"] == "next_open" and result["status"] == "filled"
        assert store.cycle_count(hold.strategy_id) == 240 - 48  # candles 48..239


def test_three_samples_of_an_llm_config_then_a_free_identical_rerun(
    tmp_path: Path, db_path: Path, varied_llm: FakeLlmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = llm_config(tmp_path / "llm.toml", varied_llm)
    rule = builtin_config(tmp_path / "rule.toml", "EMA")
    args = [
        "--config", str(llm), "--config", str(rule), "--from", "2025-01-03", "--to",
        "2025-01-03", "--samples", "3", "--yes", "--db", str(db_path),
    ]  # fmt: skip
    assert backtest(*args) == 0
    out = capsys.readouterr().out
    assert "cost estimate:" in out and "LLM (openai/fake-gpt): 72 LLM calls" in out
    assert "estimate vs actual" in out and "tokens: estimated" in out
    assert len(varied_llm.chat_requests) == 3 * 24  # three independent samples of 24 cycles
    llm_row = next(line for line in out.splitlines() if line.startswith("LLM "))
    assert re.search(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", llm_row)  # mean [CI]
    assert "3 samples" in llm_row  # the only sampled config: nothing to tell it apart from
    assert "one sample" in next(line for line in out.splitlines() if line.startswith("EMA "))

    with SqliteStore(db_path) as store:
        first = {r.sample_index: r for r in list_runs(store) if not r.request.llm.is_builtin}
        assert sorted(first) == [0, 1, 2]
        assert all(r.tokens > 0 and r.cost_usd and r.cost_usd > 0 for r in first.values())
        first_trades = {i: trades_of(store, r.strategy_id) for i, r in first.items()}
    assert len({json.dumps([t[:4] for t in v]) for v in first_trades.values()}) > 1

    assert backtest(*args) == 0  # the same command again: every reply from the cache
    rerun_out = capsys.readouterr().out
    assert len(varied_llm.chat_requests) == 3 * 24
    assert "dollars: estimated" in rerun_out and "actual $0.0000" in rerun_out
    with SqliteStore(db_path) as store:
        batches = {r.batch_id for r in list_runs(store)}
        assert len(batches) == 2
        again = {
            r.sample_index: r
            for r in list_runs(store)
            if not r.request.llm.is_builtin and r.batch_id != first[0].batch_id
        }
        assert all(r.tokens == 0 and r.cost_usd == 0 for r in again.values())
        for index, run in again.items():  # each sample reproduced, trade for trade
            assert [t[:4] for t in trades_of(store, run.strategy_id)] == [
                t[:4] for t in first_trades[index]
            ]


def test_the_budget_stops_every_run_cleanly_with_what_was_spent(
    tmp_path: Path, db_path: Path, varied_llm: FakeLlmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = llm_config(tmp_path / "llm.toml", varied_llm)
    code = backtest(
        "--config", str(llm), "--from", "2025-01-03", "--to", "2025-01-05", "--budget-usd",
        "0.5", "--yes", "--db", str(db_path),
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    requests = len(varied_llm.chat_requests)
    assert 0 < requests < 72  # stopped well before the window's end
    with SqliteStore(db_path) as store:
        [run] = list_runs(store)
        assert run.status == "stopped" and "budget of $0.50 reached" in (run.status_reason or "")
        last_cycle_usd = store.records(run.strategy_id, kind="compose", limit=1)[0].payload[
            "cost_usd"
        ]
        # it stopped after the cycle that reached the budget, not one later
        assert run.cost_usd is not None and run.cost_usd - last_cycle_usd < 0.5 <= run.cost_usd
        assert store.cycle_count(run.strategy_id) == requests
        assert run.window_to_ms == store.last_cycle_ts(run.strategy_id) - H  # what it covered
        assert store.llm_usage(run.strategy_id)[1] == pytest.approx(run.cost_usd)
        assert store.get_strategy(run.strategy_id).status == "stopped"
    assert "stopped: budget of $0.50 reached" in err
    assert "stopped: budget of $0.50 reached" in out  # the table's note
    row = next(line for line in out.splitlines() if line.startswith("LLM "))
    assert f"partial: {requests} of 72 cycles" in row  # a shorter span than its window


def test_an_llm_backtest_is_not_run_without_confirmation(
    tmp_path: Path,
    db_path: Path,
    varied_llm: FakeLlmServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm = llm_config(tmp_path / "llm.toml", varied_llm)
    args = [
        "--config",
        str(llm),
        "--from",
        "2025-01-03",
        "--to",
        "2025-01-03",
        "--db",
        str(db_path),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal to ask on
    assert backtest(*args) == 2
    out, err = capsys.readouterr()
    assert "24 LLM calls" in out and "run again with --yes" in err and "Traceback" not in err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert backtest(*args) == 2
    assert "not run: nothing was stored or spent" in capsys.readouterr().out
    assert varied_llm.chat_requests == []
    with SqliteStore(db_path) as store:
        assert list_runs(store) == [] and store.list_strategies() == []


def test_a_window_before_the_training_cutoff_is_warned_and_marked(
    tmp_path: Path, db_path: Path, varied_llm: FakeLlmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = llm_config(tmp_path / "llm.toml", varied_llm, extra='training_cutoff = "2025-03"')
    code = backtest(
        "--config", str(llm), "--from", "2025-01-03", "--to", "2025-01-03", "--yes",
        "--db", str(db_path),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: LLM: in-sample for this model: its training data runs to 2025-03" in out
    row = next(line for line in out.splitlines() if line.startswith("LLM "))
    assert "in-sample for this model" in row
    with SqliteStore(db_path) as store:
        [run] = list_runs(store)
        assert run.in_sample is not None and "2025-03" in run.in_sample


def test_errors_are_one_line_without_traceback(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = builtin_config(tmp_path / "a.toml", "EMA")
    assert backtest("--config", str(a), "--from", "2025-02-01", "--to", "2025-01-01") == 2
    assert "--to is before --from" in capsys.readouterr().err
    assert backtest("--config", str(a), "--from", "2025-01-01", "--to", "2025-01-02",
                    "--data", "csv:nope.csv", "--db", str(db_path)) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "nope.csv: no such file" in err and "Traceback" not in err
    assert backtest("--config", str(a), "--from", "2025-01-01", "--to", "2025-01-02",
                    "--data", "ftp:x", "--db", str(db_path)) == 2  # fmt: skip
    assert "use simulated, store:EXCHANGE" in capsys.readouterr().err


def test_downloaded_candles_replay_from_the_store(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from strategy_agent.data.candle_csv import read_candle_csv
    from strategy_agent.trading_history.candle_store import CandleSeries, write_candles

    frame = read_candle_csv(SMALL_CSV, "1h")
    with SqliteStore(db_path) as store:
        write_candles(store, CandleSeries("okx", "BTC/USDT", "1h"), frame.to_numpy().tolist())
    rule = builtin_config(tmp_path / "rule.toml", "EMA")  # simulated rules: no network
    args = ["--config", str(rule), "--from", "2025-01-03", "--to", "2025-01-05", "--db",
            str(db_path)]  # fmt: skip
    assert backtest(*args, "--data", "store:okx") == 0
    assert backtest(*args, "--data", "csv:" + str(SMALL_CSV)) == 0  # the same candles
    assert backtest(*args, "--data", "store:binance") == 2
    assert "no stored 1h candles of BTC/USDT from binance" in capsys.readouterr().err
    with SqliteStore(db_path) as store:
        stored, csv = sorted(list_runs(store), key=lambda r: r.data_source, reverse=True)
        assert stored.data_source == "store:okx" and stored.request.replay is not None
        assert stored.request.replay.source == "store"
        assert trades_of(store, stored.strategy_id) == trades_of(store, csv.strategy_id)
        assert len(trades_of(store, stored.strategy_id)) >= 2
