"""An LLM outage is seen: the server goes away mid-run, cycles fall back, an alert is recorded.

A whole run through the fake OpenAI-compatible server on 127.0.0.1: it answers
two cycles, is stopped (its port closes, like a crashed local model server),
then comes back on the same port. The history says how many of the last
cycles fell back and why, and records one ``alert`` on the K-th in a row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from strategy_agent.cli import main
from strategy_agent.factory import StrategyRuntime, open_runtime
from strategy_agent.models import ModelConfig, TradingConfig, UserRequest
from strategy_agent.trading_history.fallbacks import fallback_stats, recent_alerts
from strategy_agent.trading_history.store import SqliteStore
from tests.fakes.fake_llm_server import FakeLlmServer

KEY = "sk-outage-test-5e6f7a8b"
HOLD = json.dumps({"items": [], "notes": "nothing to do"})


class Outage:
    """The fake server, which the test can stop and bring back on the same port."""

    def __init__(self) -> None:
        self.server = FakeLlmServer(auto_reply=lambda body: HOLD).start()
        self.port = self.server.port
        self.api_base = self.server.api_base

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.server = FakeLlmServer(port=self.port, auto_reply=lambda body: HOLD).start()


@pytest.fixture
def outage() -> Iterator[Outage]:
    from strategy_agent.decision.llm_transport import forget_format_refusals

    forget_format_refusals()
    llm = Outage()
    try:
        yield llm
    finally:
        llm.server.stop()


def llm_request(api_base: str, alert_after: int = 3) -> UserRequest:
    return UserRequest(
        llm=ModelConfig(
            provider="openai", model_id="fake-gpt", api_base=api_base, timeout_s=5, cache=False
        ),
        trading=TradingConfig(symbols=["BTC/USDT"], fallback_alert_after=alert_after),
    )


def runtime_of(store: SqliteStore, sid: str) -> StrategyRuntime:
    rt = open_runtime(store, sid, api_key=SecretStr(KEY))
    rt.coordinator._composer.policy._sleep = lambda s: None  # type: ignore[attr-defined]
    return rt


def alerts_of(store: SqliteStore, sid: str) -> list[Any]:
    return store.records(sid, kind="alert", limit=50)


def test_outage_is_counted_and_alerted_once_after_k_in_a_row(db_path: Path, outage: Outage) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(llm_request(outage.api_base, alert_after=3), now_ms=0)
    rt = runtime_of(store, sid)
    for _ in range(2):
        report = rt.step()
        assert report.ok and report.fallback_reason is None and report.alert is None
    assert fallback_stats(store, sid).fallbacks == 0

    outage.stop()
    reports = [rt.step() for _ in range(2)]
    assert all(r.ok and r.fallback_reason for r in reports)
    assert "could not be reached" in (reports[-1].fallback_reason or "")
    assert alerts_of(store, sid) == [] and all(r.alert is None for r in reports)  # not before K

    third = rt.step()  # cycle 5: the 3rd fallback in a row
    assert third.alert is not None and "LLM unreachable" in third.alert
    (alert,) = alerts_of(store, sid)
    assert alert.reference_id == f"{sid}-000005"
    assert alert.payload["consecutive_fallbacks"] == 3 and alert.payload["since_cycle"] == 3
    assert "could not be reached" in alert.payload["reason"]
    assert alert.payload["no_reply"] is True and alert.payload["fallback_policy"] == "noop"
    assert store.cycle_count(sid) == 5 and store.failed_cycle_count(sid) == 0

    assert rt.step().alert is None  # the run goes on: no second alert
    assert len(alerts_of(store, sid)) == 1
    stats = fallback_stats(store, sid, window=10)
    assert (stats.window, stats.fallbacks, stats.streak) == (6, 4, 4)
    assert stats.ongoing and stats.no_reply and stats.last_cycle == 6
    assert stats.fallback_policy == "noop" and "could not be reached" in (stats.last_reason or "")
    assert [a.cycle for a in recent_alerts(store, sid)] == [5]

    outage.restart()
    back = rt.step()
    assert back.ok and back.fallback_reason is None
    stats = fallback_stats(store, sid, window=10)
    assert not stats.ongoing and stats.fallbacks == 4 and stats.recovered_cycle == 7
    for _ in range(8):
        rt.step()
    assert fallback_stats(store, sid, window=10).fallbacks == 1  # cycles 6..15: one left
    rt.step()
    assert fallback_stats(store, sid, window=10).fallbacks == 0  # the window is clean again
    store.close()


def test_alert_threshold_is_configurable_and_counts_across_a_restart(
    db_path: Path, outage: Outage
) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(llm_request(outage.api_base, alert_after=4), now_ms=0)
    rt = runtime_of(store, sid)
    rt.step()
    outage.stop()
    for _ in range(2):
        rt.step()
    # the process restarts mid-outage: the two stored fallbacks still count
    resumed = runtime_of(store, sid)
    assert resumed.step().alert is None  # 3 in a row: below K=4
    fourth = resumed.step()
    assert fourth.alert is not None
    (alert,) = alerts_of(store, sid)
    assert alert.reference_id == f"{sid}-000005" and alert.payload["since_cycle"] == 2
    # a restart after the alert does not write it again
    again = runtime_of(store, sid)
    assert again.step().alert is None and len(alerts_of(store, sid)) == 1
    store.close()


def test_a_new_outage_after_recovery_gets_its_own_alert(db_path: Path, outage: Outage) -> None:
    store = SqliteStore(db_path)
    sid = store.create_strategy(llm_request(outage.api_base, alert_after=2), now_ms=0)
    rt = runtime_of(store, sid)
    outage.stop()
    assert [rt.step().alert is not None for _ in range(3)] == [False, True, False]
    outage.restart()
    assert rt.step().fallback_reason is None
    outage.stop()
    assert [rt.step().alert is not None for _ in range(2)] == [False, True]
    assert [r.reference_id for r in alerts_of(store, sid)] == [f"{sid}-000006", f"{sid}-000002"]
    store.close()


def test_cli_run_prints_the_alert_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # replies that are never a plan: each cycle repairs, then falls back (no retry waits)
    server = FakeLlmServer(auto_reply=lambda body: "I would rather not say.").start()
    try:
        monkeypatch.setenv("OUTAGE_TEST_KEY", KEY)
        config = tmp_path / "llm.toml"
        config.write_text(
            "[llm]\n"
            'provider = "openai"\nmodel_id = "fake-gpt"\n'
            f'api_base = "{server.api_base}"\napi_key_env = "OUTAGE_TEST_KEY"\ncache = false\n'
            "[trading]\n"
            'symbols = ["BTC/USDT"]\nfallback_alert_after = 2\n'
            'custom_prompt = "Trade BTC."\n'
        )
        db = tmp_path / "cli.db"
        assert main(["run", "--config", str(config), "--cycles", "3", "--db", str(db)]) == 0
    finally:
        server.stop()
    lines = capsys.readouterr().out.splitlines()
    alert_lines = [line for line in lines if " ALERT " in line]
    assert len(alert_lines) == 1 and alert_lines[0].startswith("#00002")
    assert "LLM replies unusable: 2 cycles in a row (#1 to #2) fell back to noop" in alert_lines[0]
    assert sum("(fallback:" in line for line in lines) == 3
