"""Render one ``CycleDetail``: what the model saw, said, and what the guardrails made of it."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from strategy_agent.ui.widgets import PRICE, QTY, table
from strategy_agent.views import format as fmt
from strategy_agent.views.cycle_detail import CycleDetail

_OUTCOME_COLOR = {"accepted": "#15803d", "clamped": "#b45309", "rejected": "#b91c1c"}


def render_cycle(detail: CycleDetail) -> None:
    """The whole cycle, top to bottom: summary, context, reply, plan, guardrails, orders."""
    _summary(detail)
    if not detail.ok:
        st.error(
            f"This cycle failed at the **{detail.stage or 'unknown'}** stage: {detail.error}",
            icon=":material/error:",
        )
    if detail.notes and not detail.notes.startswith("built-in rule"):
        st.markdown(f"**Model notes:** {detail.notes}")
    _context(detail)
    _reply(detail)
    _plan(detail)
    _guardrails(detail)
    _orders(detail)


def _summary(detail: CycleDetail) -> None:
    audit = detail.audit
    tokens = _tokens(audit)
    cols = st.columns(6)
    cols[0].metric("Cycle", "dry run" if detail.dry_run else (detail.cycle or "—"))
    cols[1].metric("Instructions", len(detail.instructions))
    cols[2].metric("Rejected items", detail.rejections)
    cols[3].metric("Tokens", "—" if tokens is None else f"{tokens:,}")
    cols[4].metric("LLM cost", fmt.usd(audit.get("cost_usd")))
    latency = audit.get("latency_ms")
    cols[5].metric("Latency", "—" if latency is None else f"{float(latency):,.0f} ms")
    policy = audit.get("model") or audit.get("policy") or "—"
    line = f"{fmt.ts(detail.ts)} · policy **{policy}**"
    if detail.prompt_hash:  # where a prompt change took effect
        version = "" if detail.prompt_version is None else f" **v{detail.prompt_version}**"
        line += f" · prompt{version} `{detail.prompt_hash[:8]}`"
    if audit.get("fallback_used"):
        reason = audit.get("fallback_reason") or "the policy failed"
        line += f" · :orange-badge[:material/warning: fallback used] {reason}"
    st.caption(line)


def _tokens(audit: dict[str, Any]) -> int | None:
    prompt = audit.get("prompt_tokens")
    completion = audit.get("completion_tokens")
    if prompt is None and completion is None:
        return None
    return int(prompt or 0) + int(completion or 0)


def _context(detail: CycleDetail) -> None:
    with st.expander("What the model saw (context)", icon=":material/visibility:"):
        if detail.features:
            frame = pd.DataFrame(detail.features).T.reset_index(names="Symbol")
            st.markdown("**Features** (latest closed candle)")
            table(frame, {c: lambda v: f"{v:.6g}" for c in frame.columns if c != "Symbol"})
        elif detail.prices:
            st.markdown("**Prices**")
            st.json(detail.prices)
        for message in detail.messages:
            role = str(message.get("role", "message"))
            st.markdown(f"**{role.capitalize()} message**")
            st.code(str(message.get("content", "")), language=None, wrap_lines=True)
        if detail.context is not None:
            context = detail.context
            st.markdown("**Strategy prompt**")
            st.code(str(context.get("prompt_text", "")), language=None, wrap_lines=True)
            st.markdown("**Portfolio, digest and limits**")
            st.json(
                {
                    "portfolio": context.get("portfolio"),
                    "digest": context.get("digest"),
                    "constraints": context.get("constraints"),
                },
                expanded=False,
            )


def _reply(detail: CycleDetail) -> None:
    reply = detail.raw_reply
    if reply is None:
        return
    with st.expander("Raw reply", icon=":material/chat:"):
        st.code(_pretty(reply), language="json", wrap_lines=True)


def _pretty(reply: str) -> str:
    try:
        return json.dumps(json.loads(reply), indent=2)
    except (ValueError, TypeError):
        return reply


def _plan(detail: CycleDetail) -> None:
    st.markdown("##### :material/list_alt: Plan")
    items = detail.plan_items
    if not items:
        st.caption("The policy proposed nothing this cycle (hold everything).")
        return
    rows = [
        {
            "Symbol": _symbol(item.get("instrument")),
            "Action": item.get("action"),
            "Target qty": item.get("target_qty"),
            "Confidence": item.get("confidence"),
            "Rationale": item.get("rationale") or "",
        }
        for item in items
    ]
    table(
        pd.DataFrame(rows),
        {"Target qty": QTY, "Confidence": lambda v: f"{v * 100:.0f} %"},
        column_config={"Rationale": st.column_config.TextColumn(width="large")},
    )


def _symbol(instrument: Any) -> str:
    if isinstance(instrument, dict):
        return str(instrument.get("symbol", "?"))
    return str(instrument)


def _guardrails(detail: CycleDetail) -> None:
    st.markdown("##### :material/shield: Guardrails")
    if not detail.outcomes:
        st.caption("Nothing to check: no plan item reached the guardrails.")
        return
    rows = [
        {
            "Outcome": str(o.get("status")),
            "Symbol": o.get("symbol"),
            "Action": o.get("action"),
            "Requested qty": o.get("requested_qty"),
            "Final target": o.get("final_target_qty"),
            "Order qty": o.get("order_qty"),
            "Reasons": "; ".join(o.get("reasons") or []) or "within every limit",
        }
        for o in detail.outcomes
    ]
    frame = pd.DataFrame(rows)
    st.dataframe(
        frame.style.format(
            {c: lambda v: fmt.qty(v) for c in ("Requested qty", "Final target", "Order qty")},
            na_rep=fmt.DASH,
        ).map(
            lambda v: f"color: {_OUTCOME_COLOR.get(v, 'inherit')}; font-weight: 600",
            subset=["Outcome"],
        ),
        hide_index=True,
        width="stretch",
        placeholder=fmt.DASH,
        column_config={"Reasons": st.column_config.TextColumn(width="large")},
    )


def _orders(detail: CycleDetail) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("##### :material/receipt_long: Instructions")
        if not detail.instructions:
            st.caption("No order this cycle.")
        else:
            rows = [
                {
                    "Side": i.get("side"),
                    "Symbol": _symbol(i.get("instrument")),
                    "Quantity": i.get("quantity"),
                    "Type": i.get("price_mode"),
                }
                for i in detail.instructions
            ]
            table(pd.DataFrame(rows), {"Quantity": QTY})
    with right:
        st.markdown("##### :material/paid: Fills")
        if detail.dry_run:
            st.caption("Dry run: nothing was executed.")
        elif not detail.executions:
            st.caption("Nothing executed this cycle.")
        else:
            _fills_table(detail.executions)


def _fills_table(executions: list[dict[str, Any]]) -> None:
    rows = [
        {
            "Status": e.get("status"),
            "Side": e.get("side"),
            "Symbol": e.get("symbol"),
            "Filled qty": e.get("filled_qty"),
            "Price (USDT)": e.get("avg_price"),
            "Fee (USDT)": e.get("fee"),
            "Reason": e.get("reason") or "",
        }
        for e in executions
    ]
    frame = pd.DataFrame(rows)
    if not frame["Reason"].any():
        frame = frame.drop(columns=["Reason"])
    table(frame, {"Filled qty": QTY, "Price (USDT)": PRICE, "Fee (USDT)": lambda v: f"{v:,.4f}"})
