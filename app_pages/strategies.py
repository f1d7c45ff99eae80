"""Strategies: every strategy at a glance with its controls, and the New strategy form."""

import streamlit as st

from strategy_agent.errors import StrategyAgentError
from strategy_agent.ui import strategy_form
from strategy_agent.ui.widgets import empty_state, live, page_header, select_strategy, status_badge
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.cycle_detail import detail_from_report
from strategy_agent.views.strategies import (
    StrategyCard,
    cycles_text,
    delete_strategy,
    duplicate_strategy,
    strategy_cards,
)

FLASH = strategy_form.FLASH
CONFIRM_DELETE = "confirm_delete"

page_header(
    "Strategies",
    "Create strategies, step them by hand or let them run in the background.",
)
runner = get_runner()


def _flash(message: str, kind: str = "success") -> None:
    st.session_state[FLASH] = message
    st.session_state[FLASH + "_kind"] = kind


def _act(action: str, strategy_id: str) -> None:
    """Button callback: one runner or store action, its outcome as a flash message."""
    try:
        if action == "start":
            runner.start(strategy_id)
            _flash(f"Started {strategy_id}: it runs in the background.")
        elif action == "pause":
            runner.pause(strategy_id)
            _flash(f"Paused {strategy_id}.")
        elif action == "stop":
            runner.stop(strategy_id)
            _flash(f"Stopped {strategy_id}.")
        elif action == "step":
            report = runner.step_once(strategy_id)
            st.session_state["lab_result"] = (strategy_id, detail_from_report(report))
            summary = "; ".join(report.actions) or "hold"
            if report.ok:
                _flash(f"Cycle {report.cycle} of {strategy_id}: {summary}.")
            else:
                _flash(f"Cycle {report.cycle} failed at {report.stage}: {report.error}", "error")
        elif action == "duplicate":
            with open_store() as store:
                new_id = duplicate_strategy(store, strategy_id)
            select_strategy(new_id)
            _flash(f"Duplicated {strategy_id} as {new_id}.")
        elif action == "delete":
            with open_store() as store:
                delete_strategy(store, runner, strategy_id)
            st.session_state.pop(CONFIRM_DELETE, None)
            _flash(f"Deleted {strategy_id} and its history.")
        if action in {"start", "step"}:
            select_strategy(strategy_id)
    except StrategyAgentError as error:
        _flash(str(error), "error")


def _ask_delete(strategy_id: str | None) -> None:
    st.session_state[CONFIRM_DELETE] = strategy_id


def _actions(card: StrategyCard) -> None:
    sid = card.strategy_id
    with st.container(horizontal=True, horizontal_alignment="right", gap="small"):
        if card.running:
            st.button(
                "Pause",
                key=f"pause_{sid}",
                icon=":material/pause:",
                on_click=_act,
                args=("pause", sid),
            )
            st.button(
                "Stop", key=f"stop_{sid}", icon=":material/stop:", on_click=_act, args=("stop", sid)
            )
        else:
            st.button(
                "Start",
                key=f"start_{sid}",
                icon=":material/play_arrow:",
                type="primary",
                on_click=_act,
                args=("start", sid),
            )
            st.button(
                "Step",
                key=f"step_{sid}",
                icon=":material/skip_next:",
                on_click=_act,
                args=("step", sid),
            )
            if card.status not in {"stopped", "created"}:
                st.button(
                    "Stop",
                    key=f"stop_{sid}",
                    icon=":material/stop:",
                    on_click=_act,
                    args=("stop", sid),
                )
        st.button(
            "Duplicate",
            key=f"dup_{sid}",
            icon=":material/content_copy:",
            on_click=_act,
            args=("duplicate", sid),
        )
        st.button(
            "Delete", key=f"del_{sid}", icon=":material/delete:", on_click=_ask_delete, args=(sid,)
        )
    if st.session_state.get(CONFIRM_DELETE) == sid:
        st.warning(f"Delete **{card.name}** and all of its history? This cannot be undone.")
        with st.container(horizontal=True, horizontal_alignment="right"):
            st.button(
                "Yes, delete",
                key=f"confirm_del_{sid}",
                type="primary",
                on_click=_act,
                args=("delete", sid),
            )
            st.button("Cancel", key=f"cancel_del_{sid}", on_click=_ask_delete, args=(None,))


def _show_flash() -> None:
    """The outcome of the last action (shown inside the list: actions rerun only the list)."""
    if FLASH not in st.session_state:
        return
    message = st.session_state.pop(FLASH)
    if st.session_state.pop(FLASH + "_kind", "success") == "error":
        st.error(message, icon=":material/error:")
    else:
        st.success(message, icon=":material/check_circle:")


def _card(card: StrategyCard) -> None:
    with st.container(border=True, key=f"card_{card.strategy_id}"):
        info, numbers, controls = st.columns([3, 2, 3], vertical_alignment="center")
        with info:
            st.markdown(f"**{card.name}** &nbsp; `{card.strategy_id}`")
            status_badge(card.status, card.status_reason)
            st.caption(
                f"{card.mode} · {card.model} · {card.exchange} {card.market_type} · "
                f"{', '.join(card.symbols)} · {card.interval} · {cycles_text(card)} · "
                f"{card.trades:,} trades"
            )
        with numbers:
            st.metric(
                "Equity (USDT)",
                fmt.number(card.equity),
                delta=None if card.pnl_pct is None or not card.cycles else fmt.pct(card.pnl_pct),
                chart_data=card.sparkline if len(card.sparkline) > 1 else None,
                chart_type="area",
            )
        with controls:
            _actions(card)


if st.session_state.get(strategy_form.OPEN):
    strategy_form.render_form()
else:
    st.button(
        "New strategy",
        type="primary",
        icon=":material/add:",
        on_click=strategy_form.open_form,
        key="open_form",
    )

was_running = bool(runner.running_ids())


@live(was_running)
def strategy_list() -> None:
    if bool(runner.running_ids()) != was_running:
        st.rerun(scope="app")  # start or stop the auto-refresh with what runs
    _show_flash()
    with open_store() as store:
        cards = strategy_cards(store, set(runner.running_ids()))
    if not cards:
        empty_state("No strategy yet: create one with **New strategy** above.")
        return
    for card in cards:
        _card(card)


strategy_list()
