"""A new user's backtest walk-through: a model that cannot be reached fails the run (with a
reason a trader reads), occasional fallbacks are counted, samples at temperature 0 are
warned about, and the cost question says that cached replies are free (a run stopped
early is marked partial: test_backtest_cli's budget test)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strategy_agent.backtest.cli import CACHE_NOTE
from strategy_agent.backtest.driver import MAX_FALLBACK_CYCLES
from strategy_agent.cli import main
from strategy_agent.trading_history.runs import list_runs
from strategy_agent.trading_history.store import SqliteStore
from tests.backtest.test_backtest_cli import KEY_ENV, llm_config
from tests.fakes.fake_llm_server import FakeLlmServer, varied_replies

DAY = ["--from", "2025-01-03", "--to", "2025-01-03"]  # 24 hourly cycles


@pytest.fixture(autouse=True)
def fast_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key set; the LLM policy retries once, without waiting (tests stay fast)."""
    import strategy_agent.decision.llm_policy as llm_policy

    monkeypatch.setenv(KEY_ENV, "sk-test")
    build = llm_policy.build_llm_policy

    def quick(*args: Any, **kwargs: Any) -> Any:
        policy = build(*args, **kwargs)
        policy.transport.max_retries = 1
        policy._sleep = lambda seconds: None
        return policy

    monkeypatch.setattr(llm_policy, "build_llm_policy", quick)


@pytest.fixture
def varied_llm() -> Iterator[FakeLlmServer]:
    server = FakeLlmServer(auto_reply=varied_replies(), count_usage=True).start()
    try:
        yield server
    finally:
        server.stop()


def backtest(*args: str) -> int:
    return main(["backtest", *args])


@pytest.mark.parametrize("server_state", ["answers 500", "stopped"])
def test_a_model_that_cannot_be_reached_fails_the_run_with_a_reason(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str], server_state: str
) -> None:
    server = FakeLlmServer().start()  # no scripted replies: every answer is a 500
    if server_state == "stopped":
        server.stop()
    try:
        llm = llm_config(tmp_path / "llm.toml", server)
        code = backtest("--config", str(llm), *DAY, "--yes", "--db", str(db_path))
    finally:
        if server_state != "stopped":
            server.stop()
    out, err = capsys.readouterr()
    assert code == 2, err
    with SqliteStore(db_path) as store:
        [run] = list_runs(store)
        assert run.status == "failed"
        reason = run.status_reason or ""
        assert store.cycle_count(run.strategy_id) == MAX_FALLBACK_CYCLES  # not all 24
    assert f"{MAX_FALLBACK_CYCLES} cycles in a row" in reason and "fell back to noop" in reason
    assert "measures nothing about the model" in reason and "api_base" in reason
    expected = "could not be reached" if server_state == "stopped" else "no scripted reply left"
    assert expected in reason  # the model's own error
    if server_state == "answers 500":
        assert len(server.chat_requests) == MAX_FALLBACK_CYCLES * 2  # one retry each
    row = next(line for line in out.splitlines() if line.startswith("LLM "))
    assert "failed: the model failed in 3 cycles in a row" in row  # the table's note, in full
    assert "partial: 3 of 24 cycles" in row
    assert "measures nothing about the model" in err and "Traceback" not in err


def test_a_run_that_falls_back_now_and_then_runs_on_and_says_how_often(
    tmp_path: Path, db_path: Path, varied_llm: FakeLlmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    varied_llm.error(500, "overloaded")
    varied_llm.error(500, "overloaded")  # the retry: the first cycle falls back
    varied_llm.reply('{"items": [], "notes": "hold"}')
    for _ in range(4):  # two more cycles fall back: two in a row, not three
        varied_llm.error(500, "overloaded")
    llm = llm_config(tmp_path / "llm.toml", varied_llm)
    code = backtest("--config", str(llm), *DAY, "--yes", "--db", str(db_path))
    out, err = capsys.readouterr()
    assert code == 0, err
    with SqliteStore(db_path) as store:
        [run] = list_runs(store)
        assert run.status == "done"
        assert store.cycle_count(run.strategy_id) == 24
        assert run.status_reason == "3 of 24 cycles fell back to noop"
    row = next(line for line in out.splitlines() if line.startswith("LLM "))
    assert "3 of 24 cycles fell back to noop" in row and "partial" not in row


@pytest.mark.parametrize(
    ("temperature", "expected"),
    [
        ("temperature = 0", "temperature 0: the 3 samples will be the same"),
        ("", "temperature not set: the provider's default decides whether the 3 samples"),
    ],
)
def test_samples_at_temperature_0_are_warned_before_running(
    tmp_path: Path,
    db_path: Path,
    varied_llm: FakeLlmServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    temperature: str,
    expected: str,
) -> None:
    llm = llm_config(tmp_path / "llm.toml", varied_llm)
    text = llm.read_text(encoding="utf-8").replace("temperature = 0.7\n", "")
    llm.write_text(text.replace("[llm]\n", f"[llm]\n{temperature}\n"), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: it stops at the question
    args = ["--config", str(llm), *DAY, "--db", str(db_path)]
    assert backtest(*args, "--samples", "3") == 2
    out = capsys.readouterr().out
    assert f"note: LLM: {expected}" in out and "set temperature > 0 to measure the spread" in out
    assert varied_llm.chat_requests == []
    assert backtest(*args) == 2  # one sample: nothing to warn about
    assert "samples will be the same" not in capsys.readouterr().out


def test_the_cost_question_says_cached_replies_are_free(
    tmp_path: Path,
    db_path: Path,
    varied_llm: FakeLlmServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked: list[str] = []
    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    llm = llm_config(tmp_path / "llm.toml", varied_llm)
    assert backtest("--config", str(llm), *DAY, "--db", str(db_path)) == 2
    out = capsys.readouterr().out
    assert "the estimate counts every call as new" in out and CACHE_NOTE in out
    assert "a re-run of the same window" in CACHE_NOTE and "costs $0" in CACHE_NOTE
    assert asked == ["run it? (cached replies are free) [y/N] "]
