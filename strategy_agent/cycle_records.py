"""The checkpoints a cycle writes, and the feedback the next cycle reads back from them.

A composed cycle writes four records (``features``, ``compose``, ``instructions``,
``execution``) under its compose id. The ``compose`` record holds the policy's
audit, the proposal and one outcome per item; ``feedback_from_compose`` reads
from it what the next prompt tells the model about its previous plan, so the
feedback is the same whether the previous cycle ran in this process or before
a restart (``read_feedback``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from strategy_agent.data.interfaces import ClosedCandles
from strategy_agent.models import (
    Candle,
    ComposeContext,
    ComposeFeedback,
    ComposeResult,
    ExecutionResult,
    FeatureVector,
    GuardrailOutcome,
    HistoryKind,
    HistoryRecord,
    interval_ms,
)
from strategy_agent.portfolio.funding import FundingPayment

logger = logging.getLogger(__name__)

# Outcomes the model is told about: the items that were not done as it asked.
FEEDBACK_STATUSES = frozenset({"rejected", "clamped"})


class RecordReader(Protocol):
    """What ``read_feedback`` needs of the history store (``HistoryReads.records``)."""

    def records(
        self,
        strategy_id: str,
        kind: HistoryKind | None = None,
        reference_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[HistoryRecord]: ...


def prompt_hash(prompt_text: str) -> str:
    """A short fingerprint of a prompt text (12 hex digits of its SHA-256)."""
    return hashlib.sha256(prompt_text.encode("utf-8")).hexdigest()[:12]


def cycle_records(
    *,
    strategy_id: str,
    cycle: int,
    ts: int,
    compose_id: str,
    features: list[FeatureVector],
    candles: dict[str, dict[str, float]],
    context: ComposeContext,
    result: ComposeResult,
    executions: list[ExecutionResult],
    prompt_version: int | None,
) -> list[HistoryRecord]:
    """The four checkpoints of a composed cycle, in the order they happened."""

    def rec(kind: HistoryKind, payload: dict[str, Any]) -> HistoryRecord:
        return HistoryRecord(
            ts=ts, kind=kind, reference_id=compose_id, payload=payload, strategy_id=strategy_id
        )

    return [
        rec("features", features_payload(features, candles)),
        rec("compose", compose_payload(cycle, context, result, prompt_version, candles)),
        rec(
            "instructions",
            {"instructions": [i.model_dump(mode="json") for i in result.instructions]},
        ),
        rec("execution", {"results": [r.model_dump(mode="json") for r in executions]}),
    ]


def compose_payload(
    cycle: int,
    context: ComposeContext,
    result: ComposeResult,
    prompt_version: int | None,
    candles: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """The ``compose`` record: the policy's audit, the proposal, one outcome per item, and
    the cycle's data window (``data_window``: the open time, epoch ms, of the last closed
    candle of each symbol the cycle saw; see ``data_window``)."""
    payload = dict(result.audit)
    payload.update(
        {
            "cycle": cycle,
            "notes": result.proposal.notes if result.proposal else None,
            "proposal": result.proposal.model_dump(mode="json") if result.proposal else None,
            "outcomes": [o.model_dump(mode="json") for o in result.outcomes],
            "equity_before": context.portfolio.total_value,
            "prices": context.market_snapshot,
            **({"quotes": context.market_quotes} if context.market_quotes else {}),
            **({"dust": dust} if (dust := dust_positions(context)) else {}),
            "prompt_version": prompt_version,
            "prompt_hash": prompt_hash(context.prompt_text),
            # sizes other than 1, so readers of history value positions as the ledger did
            **({"contract_sizes": sizes} if (sizes := _contract_sizes(context)) else {}),
            "data_window": data_window(candles or {}),
        }
    )
    return payload


def _contract_sizes(context: ComposeContext) -> dict[str, float]:
    """The cycle's contract sizes other than 1 (``GuardrailLimits.contract_sizes``)."""
    return dict((context.constraints or {}).get("contract_sizes") or {})


def data_window(candles: Mapping[str, Mapping[str, float]]) -> dict[str, int]:
    """``{symbol: open time of the last closed candle the cycle saw}`` (epoch ms).

    With the cycle's ``ts`` it proves what the decision could know: every
    candle it saw closed at ``ts`` or before (``open + interval <= ts``);
    ``lookahead-check`` verifies it on every cycle.
    """
    return {symbol: int(candle["ts"]) for symbol, candle in sorted(candles.items())}


def dust_positions(context: ComposeContext) -> list[str]:
    """Symbols whose position is below the exchange's minimum order size (shown as dust)."""
    return sorted(s for s, p in context.portfolio.positions.items() if p.dust)


def features_payload(
    features: list[FeatureVector], candles: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """Indicator values per symbol, and the last closed candle per symbol (OHLCV, ``ts``
    its open time) so the pages draw candles and buy-and-hold without a market."""
    return {
        "by_symbol": {
            fv.instrument.symbol: {k: round(v, 8) for k, v in fv.values.items()} for fv in features
        },
        "candles": candles,
    }


def funding_record(
    compose: HistoryRecord, payments: list[FundingPayment], funding_total: float
) -> HistoryRecord:
    """The ``funding`` checkpoint of a cycle that settled ``payments`` (paper swaps).

    ``funding_total`` is the ledger's net funding after them (quote currency,
    paid positive), so the latest record gives the total without a sum.
    """
    return HistoryRecord(
        ts=compose.ts,
        kind="funding",
        reference_id=compose.reference_id,
        payload={
            "cycle": compose.payload.get("cycle"),
            "payments": [payment.to_payload() for payment in payments],
            "amount": sum(payment.amount for payment in payments),
            "funding_total": funding_total,
        },
        strategy_id=compose.strategy_id,
    )


def read_funding(store: RecordReader, strategy_id: str) -> list[FundingPayment]:
    """Every funding payment of the strategy, oldest first (to replay the ledger on a resume)."""
    records: list[HistoryRecord] = []
    page = 500
    while True:  # newest first, a page at a time
        batch = store.records(strategy_id, kind="funding", limit=page, offset=len(records))
        records.extend(batch)
        if len(batch) < page:
            break
    return [
        FundingPayment.from_payload(payment)
        for record in reversed(records)
        for payment in record.payload["payments"]
    ]


def read_last_quotes(store: RecordReader, strategy_id: str) -> dict[str, dict[str, float]]:
    """The exchange snapshot of the strategy's last composed cycle (``{}`` when none)."""
    records = store.records(strategy_id, kind="compose", limit=1)
    quotes = records[0].payload.get("quotes") if records else None
    return dict(quotes) if isinstance(quotes, Mapping) else {}


def closed_candles(candles: list[Candle], now_ms: int) -> list[Candle]:
    """The candles closed at ``now_ms`` (close time ``ts + interval`` not after it), in order.

    A ``ClosedCandles`` answer closed by ``now_ms`` is returned as it is (no scan).
    """
    if isinstance(candles, ClosedCandles) and candles.closed_at <= now_ms:
        return candles
    return [c for c in candles if c.ts + interval_ms(c.interval) <= now_ms]


def latest_closes(candles: list[Candle]) -> dict[str, float]:
    """The close of each symbol's latest candle."""
    if isinstance(candles, ClosedCandles):
        return {symbol: candle.close for symbol, candle in candles.latest.items()}
    latest: dict[str, tuple[int, float]] = {}
    for candle in candles:
        symbol = candle.instrument.symbol
        if symbol not in latest or candle.ts >= latest[symbol][0]:
            latest[symbol] = (candle.ts, candle.close)
    return {symbol: close for symbol, (_, close) in latest.items()}


def last_candles(candles: list[Candle]) -> dict[str, dict[str, float]]:
    """The latest candle of each symbol as ``{ts, open, high, low, close, volume}``."""
    latest: dict[str, Candle] = {}
    if isinstance(candles, ClosedCandles):
        latest = candles.latest
    else:
        for candle in candles:
            symbol = candle.instrument.symbol
            if symbol not in latest or candle.ts >= latest[symbol].ts:
                latest[symbol] = candle
    return {
        symbol: {
            "ts": c.ts,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
        }
        for symbol, c in latest.items()
    }


# --- feedback for the next prompt ------------------------------------------------------------


def feedback_from_compose(payload: Mapping[str, Any]) -> ComposeFeedback | None:
    """What the next prompt tells the model about the plan of this ``compose`` record.

    - the rejected and clamped items, with their reasons (the model's own plan
      only: after a fallback the outcomes are the fallback rule's, not the model's);
    - the reply problem: why a reply the model gave could not be used as written
      (``fallback_reason``, or ``repair_reason`` when a repair round fixed it).
      A fallback without any reply (server unreachable, timeout) is no fault of
      the reply and is not told.

    ``None`` when there is nothing to tell. Malformed outcomes (an older record)
    are skipped.
    """
    fallback = bool(payload.get("fallback_used"))
    problem: Any = None
    if fallback and payload.get("raw_reply") is not None:
        problem = payload.get("fallback_reason")
    elif not fallback and payload.get("repair_attempted"):
        problem = payload.get("repair_reason")
    outcomes: list[GuardrailOutcome] = []
    raw_outcomes = payload.get("outcomes")
    if not fallback and isinstance(raw_outcomes, list):
        for raw in raw_outcomes:
            if not isinstance(raw, Mapping) or raw.get("status") not in FEEDBACK_STATUSES:
                continue
            try:
                outcomes.append(GuardrailOutcome.model_validate(raw))
            except ValidationError:
                continue
    reply_problem = problem.strip() if isinstance(problem, str) and problem.strip() else None
    if not outcomes and reply_problem is None:
        return None
    return ComposeFeedback(outcomes=outcomes, reply_problem=reply_problem)


def read_feedback(store: RecordReader, strategy_id: str) -> ComposeFeedback | None:
    """The feedback of the strategy's last ``compose`` record (after a restart).

    Feedback is advice to the model: a store that cannot be read gives none (logged),
    never a failed cycle.
    """
    try:
        records = store.records(strategy_id, kind="compose", limit=1)
    except Exception as error:  # advisory: the cycle goes on without it
        logger.warning("previous plan's feedback not read for %s: %s", strategy_id, error)
        return None
    return feedback_from_compose(records[0].payload) if records else None


# --- consecutive fallbacks and their alert ---------------------------------------------------


def fallback_alert(
    compose: HistoryRecord, streak_before: int, alert_after: int
) -> tuple[int, HistoryRecord | None]:
    """The count of composed cycles in a row that fell back, after ``compose``, and the
    ``alert`` record to write with this cycle when that count reaches ``alert_after``.

    One alert per run of fallbacks: it is recorded on the ``alert_after``-th in a row,
    not again while the run goes on; a cycle whose policy answered ends the run.
    """
    payload = compose.payload
    if not payload.get("fallback_used"):
        return 0, None
    streak = streak_before + 1
    if streak != alert_after:
        return streak, None
    cycle = payload.get("cycle")
    reason = str(payload.get("fallback_reason") or "the policy failed")
    no_reply = payload.get("raw_reply") is None
    fallback = str(payload.get("fallback_policy") or "no plan")
    since = cycle - streak + 1 if isinstance(cycle, int) else None
    what = "LLM unreachable" if no_reply else "LLM replies unusable"
    cycles = f"{streak} cycle{'' if streak == 1 else 's'} in a row"
    span = f" (#{since} to #{cycle})" if since is not None and streak > 1 else ""
    alert = {
        "cycle": cycle,
        "alert": "llm_fallback",
        "consecutive_fallbacks": streak,
        "since_cycle": since,
        "reason": reason,
        "no_reply": no_reply,
        "fallback_policy": fallback,
        "model": payload.get("model"),
        "message": f"{what}: {cycles}{span} fell back to {fallback}. Last reason: {reason}",
    }
    record = HistoryRecord(
        ts=compose.ts,
        kind="alert",
        reference_id=compose.reference_id,
        payload=alert,
        strategy_id=compose.strategy_id,
    )
    return streak, record


def read_fallback_streak(store: RecordReader, strategy_id: str, cap: int) -> int:
    """How many of the strategy's last composed cycles fell back in a row (at most ``cap``).

    Read once on a resume, so a run of fallbacks that began before the restart is
    counted whole and its alert is not written twice. A store that cannot be read
    counts none (logged).
    """
    try:
        records = store.records(strategy_id, kind="compose", limit=max(cap, 1))
    except Exception as error:  # advisory: the cycle goes on without it
        logger.warning("fallback streak not read for %s: %s", strategy_id, error)
        return 0
    streak = 0
    for record in records:
        if not record.payload.get("fallback_used"):
            break
        streak += 1
    return streak
