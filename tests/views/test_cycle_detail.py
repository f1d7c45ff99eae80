"""One cycle in one shape: from stored records, a step's report, or a dry run."""

from __future__ import annotations

from strategy_agent.models import HistoryRecord
from strategy_agent.runner import StrategyRunner
from strategy_agent.views.cycle_detail import detail_from_records, detail_from_report
from strategy_agent.views.prompt_lab import run_cycle
from tests.app.helpers import Populated


def test_failed_cycle_from_its_error_record() -> None:
    record = HistoryRecord(
        ts=5,
        kind="error",
        reference_id="s-000007",
        payload={"cycle": 7, "stage": "data", "error": "exchange unreachable"},
    )
    detail = detail_from_records([record])
    assert not detail.ok and detail.cycle == 7
    assert detail.stage == "data" and detail.error == "exchange unreachable"
    assert detail.plan_items == [] and detail.rejections == 0


def test_audit_summary_hides_bulky_parts() -> None:
    record = HistoryRecord(
        ts=5,
        kind="compose",
        reference_id="s-000001",
        payload={
            "cycle": 1,
            "model": "openai/x",
            "raw_reply": '{"items": []}',
            "messages": [{"role": "system", "content": "be careful"}],
            "cost_usd": 0.001,
            "outcomes": [{"status": "rejected", "symbol": "BTC/USDT"}],
        },
    )
    detail = detail_from_records([record])
    assert detail.raw_reply == '{"items": []}'
    assert detail.messages[0]["content"] == "be careful"
    assert detail.audit_summary == {"model": "openai/x", "cost_usd": 0.001}
    assert detail.rejections == 1


def test_step_and_dry_run_details(history: Populated) -> None:
    runner = StrategyRunner(history.db)
    dry = run_cycle(runner, history.hold_id, dry_run=True)
    assert dry.dry_run and dry.context is not None and dry.executions == []
    assert dry.context["prompt_text"].startswith("Built-in rule buy_and_hold")
    report = runner.step_once(history.hold_id)
    stepped = detail_from_report(report)
    assert stepped.cycle == 41 and stepped.ok and not stepped.dry_run
    assert stepped.equity_after == report.equity
    assert len(stepped.outcomes) == 2
    assert stepped.ts == dry.ts  # the dry run looked at the very market the step traded on
