"""The Strategies page's backtest runs: a collapsed section, one compact row per run, no run
controls, and Delete of a whole batch after a confirmation.

Only rendering lives here; data comes from ``strategy_agent.views.backtest_runs``.
"""

from __future__ import annotations

import streamlit as st

from strategy_agent.errors import StrategyAgentError
from strategy_agent.ui.widgets import INTEGER, PAGES, PCT, notice, table
from strategy_agent.ui_runtime import get_backtests, get_runner, open_store
from strategy_agent.views.backtest_runs import RunsSection, delete_batch, runs_section
from strategy_agent.views.strategies import escape_markdown

CONFIRM = "runs_confirm_delete"  # the batch id whose deletion is being confirmed
NOTICE = "runs_notice"  # {text, kind, place}: "page" above the section, "confirm" inside it
RUNS_HELP = (
    "Each run replayed one window once: it has no Start, Step or Stop. The Backtest page "
    "compares a batch's runs side by side (means, intervals, curves against buy-and-hold); "
    "Portfolio, Decisions and Digest open a single run (their pickers list runs after your "
    "strategies)."
)


def render() -> None:
    """The section, collapsed, when any backtest run is stored (and the last deletion's note)."""
    with open_store() as store:
        section = runs_section(store)
    _notice("page")
    if not section.runs:
        return
    with st.expander(section.title, expanded=False, icon=":material/replay:", key="runs_section"):
        st.caption(RUNS_HELP)
        st.page_link(
            PAGES["backtest"],
            label="Compare a batch's runs on the Backtest page",
            icon=":material/arrow_forward:",
        )
        table(section.table, {"Return (%)": PCT, "Trades": INTEGER}, key="runs_table")
        if len(section.table) < section.runs:
            st.caption(f"The newest {len(section.table):,} of {section.runs:,} runs are listed.")
        _delete(section)


def _delete(section: RunsSection) -> None:
    choices = {c.batch_id: c for c in section.batch_choices}
    if not choices:
        return
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        picked = st.selectbox(
            "Batch to delete",
            list(choices),
            format_func=lambda batch_id: choices[batch_id].label,
            key="runs_delete_batch",
        )
        st.button(
            "Delete batch",
            key="runs_delete",
            icon=":material/delete:",
            on_click=_ask,
            args=(picked,),
        )
    asked = st.session_state.get(CONFIRM)
    if asked in choices:
        _confirm(choices[asked].batch_id, choices[asked].runs)


def _confirm(batch_id: str, runs: int) -> None:
    with st.container(key="runs_confirm_box"):
        st.warning(
            f"Delete the {runs} run{'s' * (runs != 1)} of batch **{batch_id}** and all their "
            "history? This cannot be undone."
        )
        _notice("confirm")
        with st.container(horizontal=True, horizontal_alignment="right"):
            st.button(
                f"Yes, delete {runs} run{'s' * (runs != 1)}",
                key="runs_delete_confirm",
                icon=":material/delete:",
                type="primary",
                on_click=_delete_batch,
                args=(batch_id,),
            )
            st.button("Cancel", key="runs_delete_cancel", icon=":material/close:", on_click=_ask)


def _ask(batch_id: str | None = None) -> None:
    st.session_state.pop(NOTICE, None)
    st.session_state[CONFIRM] = batch_id


def _delete_batch(batch_id: str) -> None:
    """Button callback: delete the batch, or say why not inside the confirmation."""
    job = get_backtests().get(batch_id)
    try:
        with open_store() as store:
            count = delete_batch(store, get_runner(), batch_id, job is not None and job.running)
    except StrategyAgentError as error:
        _say(escape_markdown(str(error)), "error", "confirm")
        return
    st.session_state.pop(CONFIRM, None)
    _say(f"Deleted batch {batch_id}: {count} backtest run{'s' * (count != 1)} and their history.")


def _say(text: str, kind: str = "success", place: str = "page") -> None:
    st.session_state[NOTICE] = {"text": text, "kind": kind, "place": place}


def _notice(place: str) -> None:
    kept = st.session_state.get(NOTICE)
    if isinstance(kept, dict) and kept.get("place") == place:
        notice(kept["text"], kept["kind"], f"runs_dismiss_{place}", _dismiss)


def _dismiss() -> None:
    st.session_state.pop(NOTICE, None)
