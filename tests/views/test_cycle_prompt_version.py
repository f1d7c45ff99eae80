"""A cycle names the prompt version it used, so a trader sees where a prompt change took effect."""

from __future__ import annotations

from strategy_agent.core import prompt_hash
from strategy_agent.factory import open_runtime
from strategy_agent.models import HistoryRecord
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import prompt_lab as lab
from strategy_agent.views.cycle_detail import (
    detail_from_compose,
    detail_from_records,
    detail_from_report,
)
from tests.app.helpers import Populated


def test_stored_cycle_names_its_prompt_version_and_hash() -> None:
    record = HistoryRecord(
        ts=5,
        kind="compose",
        reference_id="s-000004",
        payload={"cycle": 4, "prompt_version": 3, "prompt_hash": "0123456789ab", "outcomes": []},
    )
    detail = detail_from_records([record])
    assert (detail.prompt_version, detail.prompt_hash) == (3, "0123456789ab")
    assert "prompt_version" not in detail.audit_summary  # shown once, in the summary line


def test_a_step_and_a_dry_run_name_the_prompt_they_used(
    store: SqliteStore, history: Populated
) -> None:
    sid = history.hold_id
    lab.save_prompt(store, sid, "Hold BTC and ETH.", now_ms=1)
    lab.save_prompt(store, sid, "Hold only ETH.", now_ms=2)
    runtime = open_runtime(store, sid)
    report = runtime.step()
    detail = detail_from_report(report)
    assert (detail.prompt_version, detail.prompt_hash) == (2, prompt_hash("Hold only ETH."))
    stored = detail_from_records(store.records(sid, reference_id=report.compose_id))
    assert (stored.prompt_version, stored.prompt_hash) == (2, prompt_hash("Hold only ETH."))
    context, result = runtime.preview()
    dry = detail_from_compose(context, result, dry_run=True)
    assert dry.prompt_hash == prompt_hash("Hold only ETH.")
