"""Decisions: every cycle, newest first, filtered and paged; one cycle opens in full."""

import streamlit as st

from strategy_agent.ui.cycle_view import render_cycle
from strategy_agent.ui.widgets import (
    INTEGER,
    TIME,
    USD,
    empty_state,
    live,
    live_badge,
    page_header,
    pick_strategy_or_stop,
    table,
)
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.decisions import (
    ACTIONS,
    DecisionFilters,
    cycle_detail,
    fallback_state,
    latest_failures,
    timeline,
)
from strategy_agent.views.strategies import (
    alert_text,
    escape_markdown,
    fallback_headline,
    fallback_summary,
)

PAGE_SIZE = 25
ANY = "Any"
REJECTIONS = {ANY: None, "With rejections": True, "Without": False}

page_header(
    "Decisions",
    "What each cycle decided and why: rationale, actions, rejections, tokens, cost and latency.",
)
runner = get_runner()
strategy_id = pick_strategy_or_stop()
with open_store() as store:
    request = store.get_strategy(strategy_id).request
symbols = request.trading.symbols
live_badge(request.exchange.trading_mode)

with st.container(horizontal=True, vertical_alignment="bottom"):
    symbol = st.selectbox("Symbol", [ANY, *symbols], key="dec_symbol", width=200)
    action = st.selectbox("Action", [ANY, *ACTIONS], key="dec_action", width=160)
    rejected = st.segmented_control(
        "Rejections", list(REJECTIONS), default=ANY, key="dec_rejections"
    )
filters = DecisionFilters(
    symbol=None if symbol == ANY else symbol,
    action=None if action == ANY else action,
    had_rejections=REJECTIONS.get(rejected or ANY),
)


@live(runner.is_running(strategy_id))
def decisions() -> None:
    page = int(st.session_state.get("dec_page", 1))
    with open_store() as store:
        result = timeline(store, strategy_id, filters, page=page, page_size=PAGE_SIZE)
        failures = latest_failures(store, strategy_id)
        fallbacks, alerts = fallback_state(store, strategy_id)
    if fallbacks.ongoing:
        st.warning(
            f"**{fallback_headline(fallbacks)}**: {fallback_summary(fallbacks)}.  \n"
            f"Last reason: {escape_markdown(fallbacks.last_reason or 'the policy failed')}",
            icon=":material/warning:",
        )
    if alerts:
        with st.expander(
            f"Alerts ({len(alerts)})",
            icon=":material/notifications_active:",
            expanded=fallbacks.ongoing,
        ):
            for alert in alerts:
                st.markdown(
                    f"**{fmt.ts(alert.ts)}** · {alert_text(alert)}: {escape_markdown(alert.reason)}"
                )
    if failures:
        with st.expander(
            f"Recent failed cycles ({len(failures)})", icon=":material/error:", expanded=False
        ):
            for failure in failures:
                st.markdown(
                    f"**#{failure.get('cycle', '?')}** · {fmt.ts(failure['ts'])} · "
                    f"failed at **{failure.get('stage', '?')}**: {failure.get('error', '')}"
                )
    if result.total == 0:
        if filters == DecisionFilters():
            empty_state(
                "No cycle yet: run one in the Prompt lab or start the strategy.",
                "prompt_lab",
                "Go to the Prompt lab",
            )
        else:
            st.info("No cycle matches these filters: widen them.", icon=":material/filter_alt:")
        return
    with st.container(border=True):
        st.markdown(
            f"**Timeline** · {result.total:,} cycles · page {result.page} of {result.pages}"
        )
        rows = result.rows.drop(columns=["compose_id"])
        rows["Fallback"] = rows["Fallback"].map({True: "used", False: ""})
        llm_columns = ["Tokens", "Cost (USD)"]
        if rows[llm_columns].isna().all().all():
            rows = rows.drop(columns=llm_columns)  # a built-in rule: no tokens, no cost
        table(
            rows,
            {
                "Time": TIME,
                "Cost (USD)": USD,
                "Tokens": INTEGER,
                "Latency (ms)": lambda v: f"{v:,.0f}",
            },
            column_config={"Rationale": st.column_config.TextColumn(width="large")},
        )
        if result.pages > 1:
            st.number_input(f"Page (of {result.pages})", 1, result.pages, key="dec_page", width=200)
    ids = list(result.rows["compose_id"])
    labels = {
        cid: f"#{row.Cycle} · {row.Time:%Y-%m-%d %H:%M} · {row.Actions}"
        for cid, row in zip(ids, result.rows.itertuples(), strict=True)
    }
    chosen = st.selectbox(
        "Open cycle", ids, format_func=lambda cid: labels.get(cid, str(cid)), key="dec_open"
    )
    if chosen is None:
        return
    with open_store() as store:
        detail = cycle_detail(store, strategy_id, chosen)
    if detail is not None:
        with st.container(border=True):
            render_cycle(detail)


decisions()
