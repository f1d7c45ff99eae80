"""Small Streamlit pieces every page shares: header, picker, badges, empty states, refresh.

Only rendering lives here; data comes from ``strategy_agent.views``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from strategy_agent.ui_runtime import get_runtime, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.strategies import strategy_options

F = TypeVar("F", bound=Callable[..., Any])

SELECTED = "selected_strategy"
NOT_AVAILABLE = "n/a"
REFRESH_EVERY = "2s"

STATUS_STYLE: dict[str, tuple[str, str]] = {
    "running": ("green", ":material/play_circle:"),
    "pausing": ("orange", ":material/hourglass_top:"),
    "paused": ("orange", ":material/pause_circle:"),
    "stopping": ("gray", ":material/hourglass_top:"),
    "stopped": ("gray", ":material/stop_circle:"),
    "error": ("red", ":material/error:"),
    "created": ("blue", ":material/fiber_new:"),
}

PAGES = {
    "strategies": "app_pages/strategies.py",
    "prompt_lab": "app_pages/prompt_lab.py",
    "portfolio": "app_pages/portfolio.py",
    "decisions": "app_pages/decisions.py",
    "digest": "app_pages/digest.py",
    "leaderboard": "app_pages/leaderboard.py",
    "backtest": "app_pages/backtest.py",
}


def page_header(title: str, caption: str) -> None:
    """Title, one line of what the page is for, and the runtime notices."""
    st.title(title)
    st.caption(caption)
    runtime = get_runtime()
    if runtime.resume_error:
        st.error(
            f"Could not resume the strategies that were running: {runtime.resume_error}. "
            f"Check the database at {runtime.db_path}.",
            icon=":material/error:",
        )
    if runtime.resumed and not st.session_state.get("_resume_notice_shown"):
        st.session_state["_resume_notice_shown"] = True
        count = len(runtime.resumed)
        st.info(
            f"Resumed {count} strateg{'y that was' if count == 1 else 'ies that were'} "
            f"running when the app last stopped: {', '.join(runtime.resumed)}.",
            icon=":material/restart_alt:",
        )


def status_badge(status: str, reason: str | None = None) -> None:
    """A coloured status pill, with the reason underneath when there is one."""
    color, icon = STATUS_STYLE.get(status, ("gray", ":material/help:"))
    st.badge(status.capitalize(), icon=icon, color=color)  # type: ignore[arg-type]
    if reason:
        st.caption(reason)


LIVE_HELP = "This strategy sends real orders with real money (trading mode live)."


def live_badge(trading_mode: str) -> None:
    """A red LIVE badge when the strategy trades real money; nothing on paper or testnet."""
    if trading_mode == "live":
        st.badge("LIVE · real money", icon=":material/warning:", color="red", help=LIVE_HELP)


def notice(text: str, kind: str, dismiss_key: str, on_dismiss: Callable[[], None]) -> None:
    """An outcome that stays (across the 2-s refresh) until dismissed: a green or red
    alert (``kind`` "success" or "error") with a Dismiss button beside it."""
    with st.container(horizontal=True, vertical_alignment="center", gap="small", wrap=False):
        if kind == "error":
            st.error(text, icon=":material/error:", width="stretch")
        else:
            st.success(text, icon=":material/check_circle:", width="stretch")
        st.button(
            "Dismiss",
            key=dismiss_key,
            icon=":material/close:",
            type="tertiary",
            on_click=on_dismiss,
        )


def empty_state(message: str, page: str | None = None, label: str | None = None) -> None:
    """What to do next when there is nothing to show (with a link to where to do it)."""
    with st.container(border=True):
        st.markdown(f":material/info: {message}")
        if page and label:
            st.page_link(PAGES[page], label=label, icon=":material/arrow_forward:")


def pick_strategy_or_stop(include_runs: bool = True) -> str:
    """The chosen strategy's id; with none stored, say what to do and stop the page.

    The trader's strategies come first, then backtest runs (``include_runs``
    False leaves them out: a page that edits a strategy).
    """
    with open_store() as store:
        options = strategy_options(store, include_runs=include_runs)
    if not options:
        message = "No strategy yet: create one first."
        if not include_runs:
            message = "No strategy yet: create one first (backtest runs are not edited here)."
        empty_state(message, "strategies", "Go to Strategies")
        st.stop()
    return strategy_picker(options) or options[0][0]


def strategy_picker(options: Sequence[tuple[str, str]], label: str = "Strategy") -> str | None:
    """Choose one strategy (remembered across pages); ``options`` are (id, label)."""
    if not options:
        return None
    ids = [sid for sid, _ in options]
    labels = dict(options)
    key = "_picker_" + label
    if st.session_state.pop("_picker_reset", False) or st.session_state.get(key) not in ids:
        st.session_state.pop(key, None)
    current = st.session_state.get(SELECTED)
    if current not in ids:
        current = ids[0]
    chosen = st.selectbox(
        label,
        ids,
        index=ids.index(current),
        format_func=lambda sid: labels.get(sid, sid),
        key=key,
    )
    st.session_state[SELECTED] = chosen
    return str(chosen)


def select_strategy(strategy_id: str) -> None:
    """Make ``strategy_id`` the one every page shows (from the next rerun on)."""
    st.session_state[SELECTED] = strategy_id
    st.session_state["_picker_reset"] = True


def live(active: bool) -> Callable[[F], F]:
    """A fragment that reruns every 2 s while ``active`` (something runs), else a plain one."""
    return st.fragment(run_every=REFRESH_EVERY if active else None)


def show_field_error(errors: dict[str, str], key: str) -> None:
    """The validation message of one form field, right under its widget."""
    if key in errors:
        st.error(errors[key], icon=":material/error:")


# Cell formats for ``table`` (one way to write numbers everywhere; None shows as a dash).
MONEY = fmt.number
SIGNED = fmt.signed_number
PCT = fmt.pct
PCT_PLAIN = fmt.pct_plain
QTY = fmt.qty
PRICE = fmt.price
RATIO = fmt.ratio
USD = fmt.usd
TIME = fmt.when
INTEGER = fmt.integer


def table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    not_available: Mapping[int, Sequence[str]] | None = None,
    **kwargs: Any,
) -> None:
    """A read-only table: values formatted per column, missing values as a dash.

    ``not_available`` maps a row position to the columns that row shows as
    "n/a" (a figure that cannot be computed for it, as opposed to a dash for
    one not known yet); say why next to the table. The browser's own sort
    cannot put missing values last both ways (it sorts an empty cell as if it
    were 0, and "n/a", stored as -inf, first when ascending), so a table that
    ranks is a ``ranking_table``, ranked on the server.
    """
    frame = _mark_not_available(frame, not_available or {})
    styler = frame.style.format(lambda v: fmt.DASH if _missing(v) else str(v))
    for column, formatter in (formats or {}).items():
        if column in frame.columns:
            styler = styler.format(
                lambda v, f=formatter: fmt.DASH if _missing(v) else f(v), subset=[column]
            )
    for position, columns in (not_available or {}).items():
        shown = [c for c in columns if c in frame.columns]
        if shown and 0 <= position < len(frame):
            cells = pd.IndexSlice[[frame.index[position]], shown]
            styler = styler.format(lambda _: NOT_AVAILABLE, subset=cells)
    kwargs.setdefault("placeholder", fmt.DASH)
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("width", "stretch")
    st.dataframe(styler, **kwargs)


def ranking_table(
    frame: pd.DataFrame,
    key: str,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    not_available: Mapping[int, Sequence[str]] | None = None,
    **kwargs: Any,
) -> None:
    """A ``table`` whose column headers choose the ranking instead of sorting in the browser.

    Clicking a header selects that column instead of sorting it (column
    selection mode); ``selected_column(key)`` gives it on the rerun, and the
    page ranks ``frame`` by it on the server, missing values last, before
    calling this. The browser can still sort from a column's menu, with a
    comparison that would put an empty number cell among the numbers as if it
    were 0 and that cannot keep anything last both ways; so here a missing
    number is sent as -inf (shown as a dash): that sort keeps missing and
    "n/a" cells together at one end, never in the middle.
    """
    table(
        _missing_numbers_marked(frame),
        formats,
        not_available,
        key=key,
        on_select="rerun",
        selection_mode="single-column",
        **kwargs,
    )


def _missing_numbers_marked(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose missing cells in number columns hold -inf (formatted as a dash)."""
    marked = frame.copy()
    for column in marked.columns:
        values = marked[column]
        if pd.api.types.is_numeric_dtype(values) and values.isna().any():
            marked[column] = values.astype("float64").fillna(float("-inf"))
    return marked


def selected_column(key: str) -> str | None:
    """The column header last selected in the ``ranking_table`` named ``key``, if any."""
    state = st.session_state.get(key)
    try:
        columns = state["selection"]["columns"]  # type: ignore[index]
    except (KeyError, TypeError, AttributeError):
        return None
    return str(columns[0]) if columns else None


def _mark_not_available(
    frame: pd.DataFrame, not_available: Mapping[int, Sequence[str]]
) -> pd.DataFrame:
    """A copy whose "n/a" cells hold a value the browser renders (it shows its placeholder
    for an empty cell, whatever the format says): -inf in a number column, so the cell
    sorts below every number, and the text itself elsewhere."""
    if not not_available:
        return frame
    marked = frame.copy()
    for position, columns in not_available.items():
        if not 0 <= position < len(marked):
            continue
        for column in columns:
            if column not in marked.columns:
                continue
            if pd.api.types.is_numeric_dtype(marked[column]):
                marked[column] = marked[column].astype("float64")
                marked.iloc[position, marked.columns.get_loc(column)] = float("-inf")
            else:
                marked[column] = marked[column].astype("object")
                marked.iloc[position, marked.columns.get_loc(column)] = NOT_AVAILABLE
    return marked


def _missing(value: Any) -> bool:
    """None, NaN, NaT, or an infinite number (the marker of a missing or "n/a" figure)."""
    if isinstance(value, float) and not math.isfinite(value):
        return True
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
