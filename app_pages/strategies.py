"""Strategies: every strategy at a glance with its controls, and the New strategy form."""

from typing import Any

import streamlit as st

from strategy_agent.errors import StrategyAgentError
from strategy_agent.ui import strategy_form
from strategy_agent.ui.widgets import (
    empty_state,
    live,
    live_badge,
    page_header,
    select_strategy,
    status_badge,
)
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.cycle_detail import detail_from_report
from strategy_agent.views.strategies import (
    StrategyCard,
    alert_text,
    cycles_text,
    duplicate_strategy,
    escape_markdown,
    fallback_headline,
    fallback_note,
    next_decision_text,
    now_ms,
    strategy_cards,
)

FLASH = strategy_form.FLASH
CONFIRM_DELETE = "confirm_delete"
CONFIRM_STOP = "confirm_stop"
CONTROLS_HELP = (
    "**Start** runs a strategy in the background; **Step** runs one cycle by hand and leaves "
    "it paused. **Pause** keeps its positions, and Start resumes it. **Stop** ends it for "
    "good and offers to close its positions. Pause and Stop wait for a cycle in flight to "
    "finish (the card says *Pausing* or *Stopping* meanwhile), so nothing trades afterwards."
)
ENDED_HELP = "Ended: a stopped strategy does not run again. Duplicate it to reuse its settings."

page_header(
    "Strategies",
    "Create strategies, step them by hand or let them run in the background.",
)
st.caption(CONTROLS_HELP)
runner = get_runner()


def _flash(message: str, kind: str = "success") -> None:
    st.session_state[FLASH] = message
    st.session_state[FLASH + "_kind"] = kind


HALTED = {
    "pausing": "Pausing {sid}: its current cycle finishes first, then it pauses.",
    "paused": "Paused {sid}: positions kept; Start resumes it.",
    "stopping": "Stopping {sid}: its current cycle finishes first{close}, then it stops.",
    "stopped": "Stopped {sid}: it has ended.",
}


def _act(action: str, strategy_id: str) -> None:
    """Button callback: one runner action (each answers at once), its outcome as a flash."""
    try:
        if action == "start":
            runner.start(strategy_id)
            _flash(f"Started {strategy_id}: it runs in the background.")
        elif action in {"pause", "stop", "stop_close"}:
            close = action == "stop_close"
            if action == "pause":
                status = runner.pause(strategy_id)
            else:
                status = runner.stop(strategy_id, close_positions=close)
            st.session_state.pop(CONFIRM_STOP, None)
            extra = " and one more cycle closes every position" if close else ""
            _flash(HALTED[status].format(sid=strategy_id, close=extra))
        elif action == "step":
            _step(strategy_id)
        elif action == "duplicate":
            with open_store() as store:
                new_id = duplicate_strategy(store, strategy_id)
            select_strategy(new_id)
            _flash(f"Duplicated {strategy_id} as {new_id}.")
        elif action == "delete":
            runner.delete(strategy_id)
            st.session_state.pop(CONFIRM_DELETE, None)
            _flash(f"Deleted {strategy_id} and its history.")
        if action in {"start", "step"}:
            select_strategy(strategy_id)
    except StrategyAgentError as error:
        _flash(str(error), "error")


def _step(strategy_id: str) -> None:
    report = runner.step_once(strategy_id)
    st.session_state["lab_result"] = (strategy_id, detail_from_report(report))
    summary = "; ".join(report.actions) or "hold"
    if report.ok:
        _flash(f"Cycle {report.cycle} of {strategy_id}: {summary}. It is paused: Start runs it.")
    else:
        _flash(f"Cycle {report.cycle} failed at {report.stage}: {report.error}", "error")


def _ask_delete(strategy_id: str | None) -> None:
    st.session_state[CONFIRM_DELETE] = strategy_id


def _ask_stop(strategy_id: str | None) -> None:
    st.session_state[CONFIRM_STOP] = strategy_id


def _button(label: str, key: str, icon: str, callback: Any, *args: Any, **kw: Any) -> None:
    st.button(label, key=key, icon=f":material/{icon}:", on_click=callback, args=args, **kw)


def _actions(card: StrategyCard) -> None:
    sid, status = card.strategy_id, card.status
    finishing = status in {"pausing", "stopping"}
    with st.container(horizontal=True, horizontal_alignment="right", gap="small"):
        if finishing:
            st.caption(":material/hourglass_top: Finishing its current cycle…")
        elif card.running:
            _button("Pause", f"pause_{sid}", "pause", _act, "pause", sid)
            _button("Stop", f"stop_{sid}", "stop", _ask_stop, sid)
        elif status == "stopped":
            st.caption(ENDED_HELP)
        else:
            _button("Start", f"start_{sid}", "play_arrow", _act, "start", sid, type="primary")
            _button("Step", f"step_{sid}", "skip_next", _act, "step", sid)
            if status != "created":
                _button("Stop", f"stop_{sid}", "stop", _ask_stop, sid)
        _button("Duplicate", f"dup_{sid}", "content_copy", _act, "duplicate", sid)
        busy = card.running or finishing
        help_text = "Pause or stop it first." if busy else None
        _button("Delete", f"del_{sid}", "delete", _ask_delete, sid, disabled=busy, help=help_text)
    if st.session_state.get(CONFIRM_STOP) == sid and not finishing and status != "stopped":
        st.warning(
            f"Stop **{card.name}**? A stopped strategy has ended: it cannot be started again. "
            "Its open positions stay open unless you close them now (one more recorded cycle "
            "sells longs and buys back shorts at the market)."
        )
        with st.container(horizontal=True, horizontal_alignment="right"):
            _button(
                "Stop and close positions",
                f"confirm_stop_close_{sid}",
                "stop_circle",
                _act,
                "stop_close",
                sid,
                type="primary",
            )
            _button("Stop, keep positions", f"confirm_stop_{sid}", "stop", _act, "stop", sid)
            _button("Cancel", f"cancel_stop_{sid}", "close", _ask_stop, None)
    if st.session_state.get(CONFIRM_DELETE) == sid:
        st.warning(f"Delete **{card.name}** and all of its history? This cannot be undone.")
        with st.container(horizontal=True, horizontal_alignment="right"):
            _button(
                "Yes, delete", f"confirm_del_{sid}", "delete", _act, "delete", sid, type="primary"
            )
            _button("Cancel", f"cancel_del_{sid}", "close", _ask_delete, None)


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
            live_badge(card.mode)
            status_badge(card.status, card.status_reason)
            if card.fallback is not None and card.fallback.ongoing:
                policy = card.fallback.fallback_policy or "no plan"
                st.badge(
                    f"{fallback_headline(card.fallback)} · trading on {policy}",
                    icon=":material/cloud_off:" if card.fallback.no_reply else ":material/warning:",
                    color="orange",
                )
            st.caption(
                f"{card.mode} · {card.model} · {card.exchange} {card.market_type} · "
                f"{', '.join(card.symbols)} · {card.interval} · {cycles_text(card)} · "
                f"{card.trades:,} trades"
            )
            due = runner.next_due_ms(card.strategy_id)  # live markets: once per closed candle
            if due is not None:
                when = next_decision_text(due, now_ms(), card.interval)
                st.caption(f":material/schedule: {when}")
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
        _fallback(card)


def _fallback(card: StrategyCard) -> None:
    """The card's recent fallbacks: amber while they go on, a quiet line once it answers."""
    note = fallback_note(card)
    if note is None:
        return
    where = f" · API base `{note.api_base}`" if note.api_base else ""
    alert = f"  \n:material/notifications_active: {alert_text(card.alert)}" if card.alert else ""
    if note.ongoing:
        st.warning(
            f"**{note.headline}**: {note.summary}.  \n"
            f"Reason: {escape_markdown(note.reason)}{where}{alert}",
            icon=":material/cloud_off:",
        )
    else:
        st.caption(
            f":material/cloud_done: **{note.headline}**: {note.summary} "
            f"(last reason: {escape_markdown(note.reason)}){alert}"
        )


def _outage_summary(cards: list[StrategyCard]) -> None:
    """One line above the list naming every strategy whose latest cycle fell back."""
    down = [c for c in cards if c.fallback is not None and c.fallback.ongoing]
    if not down:
        return
    names = ", ".join(f"**{c.name}** ({fallback_headline(c.fallback)})" for c in down if c.fallback)
    count = f"{len(down)} strateg{'y is' if len(down) == 1 else 'ies are'}"
    st.warning(
        f"{count} trading on the fallback rule, not on the model: {names}. "
        "Each card below says why.",
        icon=":material/notifications_active:",
    )


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
    _outage_summary(cards)
    for card in cards:
        _card(card)


strategy_list()
