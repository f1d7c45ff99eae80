"""Strategies: every strategy at a glance with its controls, and the New strategy form."""

from typing import Any

import streamlit as st

from strategy_agent.errors import StrategyAgentError
from strategy_agent.ui import backtest_runs, strategy_form
from strategy_agent.ui.widgets import (
    empty_state,
    live,
    live_badge,
    notice,
    page_header,
    select_strategy,
    status_badge,
)
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.cycle_detail import detail_from_report
from strategy_agent.views.strategies import (
    RunBy,
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

FLASH = strategy_form.FLASH  # the form's "Created ..." (moved into NOTICES)
NOTICES = "strategy_notices"  # strategy id ("" for the page) -> {text, kind, place}
PAGE = ""
LIVE_ELSEWHERE = "strategies_run_elsewhere"  # the list refreshes while another process runs one
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


def _say(key: str, text: str, kind: str = "success", place: str = "card") -> None:
    """Keep an outcome on a card (``key`` its strategy id, ``PAGE`` above the list) until it
    is dismissed or the next control of that card; ``place`` "stop" or "delete" shows it in
    that confirmation while it is open."""
    st.session_state.setdefault(NOTICES, {})[key] = {"text": text, "kind": kind, "place": place}


def _dismiss(key: str) -> None:
    st.session_state.setdefault(NOTICES, {}).pop(key, None)


def _notice_of(key: str) -> dict[str, str] | None:
    found = st.session_state.get(NOTICES, {}).get(key)
    return found if isinstance(found, dict) else None


HALTED = {
    "pausing": "Pausing {sid}: its current cycle finishes first, then it pauses.",
    "paused": "Paused {sid}: positions kept; Start resumes it.",
    "stopping": "Stopping {sid}: its current cycle finishes first{close}, then it stops.",
    "stopped": "Stopped {sid}: it has ended.",
}


def _act(action: str, strategy_id: str) -> None:
    """Button callback: one runner action (each answers at once), its outcome on the card."""
    _dismiss(strategy_id)
    _dismiss(PAGE)
    try:
        if action == "start":
            runner.start(strategy_id)
            _say(strategy_id, f"Started {strategy_id}: it runs in the background.")
        elif action in {"pause", "stop", "stop_close"}:
            close = action == "stop_close"
            if action == "pause":
                status = runner.pause(strategy_id)
            else:
                status = runner.stop(strategy_id, close_positions=close)
            st.session_state.pop(CONFIRM_STOP, None)
            extra = " and one more cycle closes every position" if close else ""
            _say(strategy_id, HALTED[status].format(sid=strategy_id, close=extra))
        elif action == "step":
            _step(strategy_id)
        elif action == "duplicate":
            with open_store() as store:
                new_id = duplicate_strategy(store, strategy_id)
            select_strategy(new_id)
            _say(new_id, f"A copy of {strategy_id}: the same settings, no history yet.")
        elif action == "delete":
            runner.delete(strategy_id)
            st.session_state.pop(CONFIRM_DELETE, None)
            _say(PAGE, f"Deleted {strategy_id} and its history.")
        if action in {"start", "step"}:
            select_strategy(strategy_id)
    except StrategyAgentError as error:  # refused: said on the card, or in its confirmation
        place = {"stop": "stop", "stop_close": "stop", "delete": "delete"}.get(action, "card")
        _say(strategy_id, escape_markdown(str(error)), "error", place)


def _step(strategy_id: str) -> None:
    report = runner.step_once(strategy_id)
    st.session_state["lab_result"] = (strategy_id, detail_from_report(report))
    summary = "; ".join(report.actions) or "hold"
    if report.ok:
        text = f"Cycle {report.cycle} of {strategy_id}: {summary}. It is paused: Start runs it."
        _say(strategy_id, text)
    else:
        failed = escape_markdown(f"{report.error}")
        _say(strategy_id, f"Cycle {report.cycle} failed at {report.stage}: {failed}", "error")


def _ask_delete(strategy_id: str | None, card_id: str) -> None:
    _dismiss(card_id)
    st.session_state[CONFIRM_DELETE] = strategy_id


def _ask_stop(strategy_id: str | None, card_id: str) -> None:
    _dismiss(card_id)
    st.session_state[CONFIRM_STOP] = strategy_id


def _button(label: str, key: str, icon: str, callback: Any, *args: Any, **kw: Any) -> None:
    st.button(label, key=key, icon=f":material/{icon}:", on_click=callback, args=args, **kw)


def _actions(card: StrategyCard) -> None:
    sid, status = card.strategy_id, card.status
    finishing = status in {"pausing", "stopping"}
    elsewhere = card.run_by
    with st.container(horizontal=True, horizontal_alignment="right", gap="small"):
        if finishing:
            st.caption(":material/hourglass_top: Finishing its current cycle…")
        elif elsewhere is not None:  # each of these would be refused: say why instead
            why = _elsewhere_help(elsewhere)
            _button(
                "Start", f"start_{sid}", "play_arrow", _act, "start", sid, disabled=True, help=why
            )
            _button("Step", f"step_{sid}", "skip_next", _act, "step", sid, disabled=True, help=why)
        elif card.running:
            _button("Pause", f"pause_{sid}", "pause", _act, "pause", sid)
            _button("Stop", f"stop_{sid}", "stop", _ask_stop, sid, sid)
        elif status == "stopped":
            st.caption(ENDED_HELP)
        else:
            _button("Start", f"start_{sid}", "play_arrow", _act, "start", sid, type="primary")
            _button("Step", f"step_{sid}", "skip_next", _act, "step", sid)
            if status != "created":
                _button("Stop", f"stop_{sid}", "stop", _ask_stop, sid, sid)
        _button("Duplicate", f"dup_{sid}", "content_copy", _act, "duplicate", sid)
        busy = card.running or finishing or elsewhere is not None
        help_text = "Pause or stop it first." if busy else None
        if elsewhere is not None:
            help_text = _elsewhere_help(elsewhere)
        _button(
            "Delete", f"del_{sid}", "delete", _ask_delete, sid, sid, disabled=busy, help=help_text
        )
    if elsewhere is not None:
        advice = f"{elsewhere.advice[:1].upper()}{elsewhere.advice[1:]}"
        st.caption(f":material/info: {advice}.", text_alignment="right")


def _confirmations(card: StrategyCard) -> None:
    """An open Stop or Delete confirmation, across the card (a refusal shows inside it)."""
    if _stop_open(card):
        _confirm_stop(card)
    if _delete_open(card):
        _confirm_delete(card)


def _stop_open(card: StrategyCard) -> bool:
    finished = card.status in {"pausing", "stopping", "stopped"}
    return st.session_state.get(CONFIRM_STOP) == card.strategy_id and not finished


def _delete_open(card: StrategyCard) -> bool:
    return st.session_state.get(CONFIRM_DELETE) == card.strategy_id


def _confirm_stop(card: StrategyCard) -> None:
    sid = card.strategy_id
    with st.container(key=f"confirm_stop_box_{sid}"):
        st.warning(
            f"Stop **{card.name}**? A stopped strategy has ended: it cannot be started again. "
            "Its open positions stay open unless you close them now (one more recorded cycle "
            "sells longs and buys back shorts at the market)."
        )
        _notice(sid, "stop")  # a refused stop says so here, where it was asked
        refused = card.run_by is not None  # it would be refused again: say why instead
        why = _elsewhere_help(card.run_by) if card.run_by is not None else None
        with st.container(horizontal=True, horizontal_alignment="right"):
            _button(
                "Stop and close positions",
                f"confirm_stop_close_{sid}",
                "stop_circle",
                _act,
                "stop_close",
                sid,
                type="primary",
                disabled=refused,
                help=why,
            )
            _button(
                "Stop, keep positions",
                f"confirm_stop_{sid}",
                "stop",
                _act,
                "stop",
                sid,
                disabled=refused,
                help=why,
            )
            _button("Cancel", f"cancel_stop_{sid}", "close", _ask_stop, None, sid)


def _confirm_delete(card: StrategyCard) -> None:
    sid = card.strategy_id
    with st.container(key=f"confirm_delete_box_{sid}"):
        st.warning(f"Delete **{card.name}** and all of its history? This cannot be undone.")
        _notice(sid, "delete")
        with st.container(horizontal=True, horizontal_alignment="right"):
            why = _elsewhere_help(card.run_by) if card.run_by is not None else None
            _button(
                "Yes, delete",
                f"confirm_del_{sid}",
                "delete",
                _act,
                "delete",
                sid,
                type="primary",
                disabled=why is not None,
                help=why,
            )
            _button("Cancel", f"cancel_del_{sid}", "close", _ask_delete, None, sid)


def _elsewhere_help(elsewhere: RunBy) -> str:
    """The tooltip of a control that a strategy run elsewhere would refuse."""
    return f"{elsewhere.text}: {elsewhere.advice}."


def _notice(key: str, place: str | None = None) -> None:
    """The outcome kept for ``key`` (``place``: only one kept for that confirmation)."""
    kept = _notice_of(key)
    if kept is None or (place is not None and kept.get("place") != place):
        return
    notice(kept["text"], kept["kind"], f"dismiss_{key or 'page'}", lambda: _dismiss(key))


def _card_notice(card: StrategyCard) -> None:
    """The card's kept outcome, unless its confirmation is open and shows it."""
    kept = _notice_of(card.strategy_id)
    if kept is None:
        return
    place = kept.get("place")
    if (place == "stop" and _stop_open(card)) or (place == "delete" and _delete_open(card)):
        return
    _notice(card.strategy_id)


def _card(card: StrategyCard) -> None:
    with st.container(border=True, key=f"card_{card.strategy_id}"):
        info, numbers, controls = st.columns([3, 2, 3], vertical_alignment="center")
        with info:
            st.markdown(f"**{escape_markdown(card.name)}** &nbsp; `{card.strategy_id}`")
            live_badge(card.mode)
            status_badge(card.status, card.status_reason)
            if card.run_by is not None:
                icon = "hourglass_top" if card.run_by.short else "terminal"
                st.caption(f":material/{icon}: {escape_markdown(card.run_by.text)}")
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
        _confirmations(card)
        _card_notice(card)
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

# the list refreshes every 2 s while this app runs a strategy or another process does
was_live = bool(runner.running_ids()) or bool(st.session_state.get(LIVE_ELSEWHERE))


@live(was_live)
def strategy_list() -> None:
    if FLASH in st.session_state:  # the form's "Created ...": kept like any outcome
        _say(PAGE, str(st.session_state.pop(FLASH)))
    with open_store() as store:
        cards = strategy_cards(store, set(runner.running_ids()))
    elsewhere = any(card.run_by is not None for card in cards)
    st.session_state[LIVE_ELSEWHERE] = elsewhere
    if (bool(runner.running_ids()) or elsewhere) != was_live:
        st.rerun(scope="app")  # start or stop the auto-refresh with what runs
    _notice(PAGE)
    if not cards:
        empty_state("No strategy yet: create one with **New strategy** above.")
        return
    _outage_summary(cards)
    for card in cards:
        _card(card)


strategy_list()
backtest_runs.render()  # backtest runs apart: a collapsed list, no run controls
