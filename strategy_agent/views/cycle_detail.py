"""One decision cycle in one shape, whether it comes from the database, a step or a dry run.

The Decisions page rebuilds it from a cycle's stored checkpoints; the Prompt
lab builds it from the ``CycleReport`` of a step or the ``(context, result)``
of a dry run. The same renderer shows all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strategy_agent.core import prompt_hash
from strategy_agent.models import ComposeContext, ComposeResult, HistoryRecord

AUDIT_HIDDEN = {"raw_reply", "messages", "prompt", "system_prompt", "user_prompt"}


@dataclass
class CycleDetail:
    """Everything one cycle did (payloads as JSON-ready dicts)."""

    compose_id: str
    ts: int
    cycle: int | None = None
    ok: bool = True
    dry_run: bool = False
    error: str | None = None
    stage: str | None = None
    features: dict[str, dict[str, float]] = field(default_factory=dict)
    context: dict[str, Any] | None = None
    proposal: dict[str, Any] | None = None
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    instructions: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    equity_before: float | None = None
    equity_after: float | None = None
    prompt_version: int | None = None  # the saved version of the prompt used; None: unsaved
    prompt_hash: str | None = None  # short fingerprint of the prompt text used

    @property
    def raw_reply(self) -> str | None:
        reply = self.audit.get("raw_reply")
        return None if reply is None else str(reply)

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.audit.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def plan_items(self) -> list[dict[str, Any]]:
        return list((self.proposal or {}).get("items") or [])

    @property
    def notes(self) -> str | None:
        return (self.proposal or {}).get("notes")

    @property
    def audit_summary(self) -> dict[str, Any]:
        """The audit without its bulky parts (raw reply, prompt messages)."""
        return {k: v for k, v in self.audit.items() if k not in AUDIT_HIDDEN}

    @property
    def rejections(self) -> int:
        return sum(1 for o in self.outcomes if o.get("status") == "rejected")

    @property
    def fills(self) -> list[dict[str, Any]]:
        return [e for e in self.executions if e.get("status") == "filled"]


_COMPOSE_KEYS = {
    "cycle",
    "notes",
    "proposal",
    "outcomes",
    "equity_before",
    "prices",
    "prompt_version",
    "prompt_hash",
}


def detail_from_records(records: list[HistoryRecord]) -> CycleDetail:
    """Rebuild a cycle from its stored checkpoints (features, compose, instructions...)."""
    if not records:
        raise ValueError("a cycle needs at least one record")
    first = records[0]
    detail = CycleDetail(compose_id=first.reference_id, ts=first.ts)
    for record in records:
        payload = record.payload
        if record.kind == "features":
            detail.features = dict(payload.get("by_symbol") or {})
        elif record.kind == "compose":
            detail.cycle = payload.get("cycle")
            detail.proposal = payload.get("proposal")
            detail.outcomes = list(payload.get("outcomes") or [])
            detail.equity_before = payload.get("equity_before")
            detail.prices = dict(payload.get("prices") or {})
            detail.prompt_version = payload.get("prompt_version")
            detail.prompt_hash = payload.get("prompt_hash")
            detail.audit = {k: v for k, v in payload.items() if k not in _COMPOSE_KEYS}
            detail.context = payload.get("context")
        elif record.kind == "instructions":
            detail.instructions = list(payload.get("instructions") or [])
        elif record.kind == "execution":
            detail.executions = list(payload.get("results") or [])
        elif record.kind == "error":
            detail.ok = False
            detail.cycle = payload.get("cycle", detail.cycle)
            detail.stage = payload.get("stage")
            detail.error = payload.get("error")
    return detail


def detail_from_compose(
    context: ComposeContext, result: ComposeResult, *, dry_run: bool
) -> CycleDetail:
    """A cycle as composed in memory (a dry run, or the compose part of a step)."""
    return CycleDetail(
        compose_id=context.compose_id,
        ts=context.ts,
        dry_run=dry_run,
        features={fv.instrument.symbol: dict(fv.values) for fv in context.features},
        context=context.model_dump(mode="json"),
        proposal=result.proposal.model_dump(mode="json") if result.proposal else None,
        outcomes=[o.model_dump(mode="json") for o in result.outcomes],
        instructions=[i.model_dump(mode="json") for i in result.instructions],
        audit=dict(result.audit),
        prices=dict(context.market_snapshot),
        equity_before=context.portfolio.total_value,
        prompt_hash=prompt_hash(context.prompt_text),
    )


def detail_from_report(report: Any) -> CycleDetail:
    """A cycle from the runner's ``CycleReport`` (a step just made)."""
    if report.result is not None and report.context is not None:
        detail = detail_from_compose(report.context, report.result, dry_run=False)
    else:
        detail = CycleDetail(compose_id=report.compose_id, ts=report.ts)
    detail.cycle = report.cycle
    detail.ok = bool(report.ok)
    detail.error = report.error
    detail.stage = report.stage
    detail.executions = [e.model_dump(mode="json") for e in report.executions]
    detail.equity_after = report.equity
    detail.prompt_version = report.prompt_version
    detail.prompt_hash = report.prompt_hash or detail.prompt_hash
    return detail
