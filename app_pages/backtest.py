"""Backtest: pick configs, a window and data; see the cost; run in the background; compare."""

from datetime import date
from typing import Any

import streamlit as st

from strategy_agent.backtest.driver import ConfigEntry
from strategy_agent.errors import StrategyAgentError
from strategy_agent.ui import backtest_panels as panels
from strategy_agent.ui.widgets import empty_state, page_header
from strategy_agent.ui_runtime import get_backtests, get_runner, get_runtime, open_store
from strategy_agent.views import backtest as bt
from strategy_agent.views.strategies import builtin_models

PLAN = "backtest_plan"  # (signature, plan) of the last estimate
PLAN_ERROR = "backtest_plan_error"
BATCH = "backtest_batch"  # the batch the comparison shows
ENDED_SEEN = "backtest_batch_ended_seen"  # a batch whose end is no longer announced
DEFAULT_FROM = date(2025, 1, 3)
DEFAULT_TO = date(2025, 1, 16)
MAX_SAMPLES = 50

page_header(
    "Backtest",
    "Replay a window for several configs side by side on the same candles: see what it will "
    "cost, run it in the background, and compare the runs fairly.",
)
jobs = get_backtests()


def choose_entries(mode: str, sources: list[bt.ConfigSource]) -> list[ConfigEntry]:
    """The configs of the chosen mode (``StrategyAgentError`` says what is wrong)."""
    by_id = {s.strategy_id: s for s in sources}
    labels = {s.strategy_id: s.label for s in sources}
    if mode == "Strategies":
        chosen = st.multiselect(
            "Strategies (their stored configs)",
            list(by_id),
            default=list(by_id)[:2],
            format_func=labels.__getitem__,
            key="bt_strategies",
        )
        return bt.entries_from_strategies([by_id[sid] for sid in chosen])
    source = by_id[
        st.selectbox("Strategy", list(by_id), format_func=labels.__getitem__, key="bt_strategy")
    ]
    if mode == "Prompt versions":
        with open_store() as store:
            versions = bt.prompt_version_choices(store, source.strategy_id)
            names = dict(versions)
            picked = st.multiselect(
                "Prompt versions (saved in the Prompt lab)",
                list(names),
                default=list(names)[:3],
                format_func=names.__getitem__,
                key=f"bt_versions_{source.strategy_id}",
            )
            if not versions:
                st.caption("No saved prompt version yet: save versions in the Prompt lab.")
            return bt.entries_from_prompt_versions(store, source, picked)
    models = bt.model_choices([source, *sources], builtin_models())
    picked_models = st.multiselect(
        "Models (each runs this strategy's config)",
        list(range(len(models))),
        default=[0],
        format_func=lambda i: models[i].label,
        key=f"bt_models_{source.strategy_id}",
    )
    return bt.entries_from_models(source, [models[i] for i in picked_models])


def choose_data(entries: list[ConfigEntry]) -> Any:
    """The data spec picked (uploads saved beside the database), or ``None``."""
    with open_store() as store:
        choices = bt.data_choices(store)
    labels = [c.label for c in choices] + ["Upload CSV files"]
    picked = st.radio("Data", labels, horizontal=True, key="bt_data")
    if picked != "Upload CSV files":
        choice = choices[labels.index(picked)]
        st.caption(choice.detail)
        return choice.spec
    files = st.file_uploader(
        "Candle CSV files (header ts,open,high,low,close,volume; ts in epoch ms or ISO 8601)",
        type=["csv"],
        accept_multiple_files=True,
        key="bt_files",
    )
    symbols = sorted({s for e in entries for s in e.request.trading.symbols})
    named = []
    for index, upload in enumerate(files or []):
        symbol = st.text_input(
            f"Symbol of {upload.name}",
            value=bt.guess_symbol(upload.name, symbols),
            key=f"bt_symbol_{index}_{upload.name}",
            help="Leave empty when the configs trade one symbol.",
        )
        path = bt.save_upload(get_runtime().db_path.parent, upload.name, upload.getvalue())
        named.append((symbol, path))
    return bt.csv_spec(named) if named else None


def parse_budget(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise StrategyAgentError(f"budget {text!r} is not an amount of dollars") from None
    if not value > 0 or value == float("inf"):
        raise StrategyAgentError(f"the budget must be a positive amount of dollars, got {text}")
    return value


def setup() -> None:
    with open_store() as store:
        sources = bt.config_sources(store, get_runner().session_keys())
    if not sources:
        empty_state(
            "No strategy yet: a backtest replays the config of a stored strategy.",
            "strategies",
            "Go to Strategies",
        )
        return
    with st.container(border=True):
        st.markdown("**1 · What to compare**")
        mode = st.segmented_control(
            "Compare",
            ["Strategies", "Prompt versions", "Models"],
            default="Strategies",
            key="bt_mode",
        )
        try:
            entries = choose_entries(mode or "Strategies", sources)
        except StrategyAgentError as error:
            st.error(str(error), icon=":material/error:")
            return
    with st.container(border=True):
        st.markdown("**2 · Window and data**")
        left, right, samples_col, budget_col = st.columns(4)
        first = left.date_input("From (UTC)", value=DEFAULT_FROM, key="bt_from")
        last = right.date_input("To (UTC, included)", value=DEFAULT_TO, key="bt_to")
        samples = samples_col.number_input(
            "Samples per LLM config",
            value=1,
            step=1,
            key="bt_samples",
            help="Independent samples of each LLM config (use a temperature above 0); "
            "built-in rules are deterministic and run once.",
        )
        budget_text = budget_col.text_input(
            "Budget (US dollars)",
            key="bt_budget",
            placeholder="no limit",
            help="Every run stops after its cycle in flight once this much is spent.",
        )
        try:
            spec = choose_data(entries)
            budget = parse_budget(budget_text)
            if not 1 <= int(samples) <= MAX_SAMPLES or samples != int(samples):
                raise StrategyAgentError(f"samples must be a whole number from 1 to {MAX_SAMPLES}")
        except StrategyAgentError as error:
            st.error(str(error), icon=":material/error:")
            return
    signature = (
        tuple((e.label, e.request.model_dump_json()) for e in entries),
        first,
        last,
        spec,
        int(samples),
    )
    estimate(entries, signature, spec, budget)


def estimate(entries: list[ConfigEntry], signature: tuple, spec: Any, budget: float | None) -> None:
    with st.container(border=True):
        st.markdown("**3 · Estimate, then run**")
        ready = bool(entries) and spec is not None and isinstance(signature[1], date)
        if st.button(
            "Estimate", icon=":material/calculate:", disabled=not ready, key="bt_estimate"
        ):
            st.session_state.pop(PLAN, None)
            st.session_state.pop(PLAN_ERROR, None)
            st.session_state[ENDED_SEEN] = st.session_state.get(BATCH)  # its end was seen
            try:
                with (
                    st.spinner("Loading the candles and rendering sample prompts..."),
                    open_store() as store,
                ):
                    plan = bt.make_plan(
                        store, entries, signature[1], signature[2], spec, signature[4]
                    )
                st.session_state[PLAN] = (signature, plan)
            except StrategyAgentError as error:
                st.session_state[PLAN_ERROR] = (signature, str(error))
        if not entries:
            st.caption("Pick at least one config above.")
        elif spec is None:
            st.caption("Upload the candles to replay.")
        failed = st.session_state.get(PLAN_ERROR)
        if failed is not None and failed[0] == signature:
            st.error(failed[1], icon=":material/error:")
        stored = st.session_state.get(PLAN)
        if stored is None or stored[0] != signature:
            if stored is not None:
                st.caption("The choices changed since the estimate: estimate again.")
            return
        plan = stored[1]
        summary = bt.plan_summary(plan)
        blocked = panels.estimate_panel(summary, budget)
        if st.button(
            "Run backtest",
            type="primary",
            icon=":material/play_arrow:",
            disabled=blocked,
            key="bt_run",
        ):
            try:
                jobs.start(plan, budget)
            except RuntimeError as error:
                st.error(str(error), icon=":material/error:")
                return
            st.session_state.pop(PLAN, None)  # a plan runs once (its batch id is its own)
            st.session_state[BATCH] = plan.batch_id
            st.rerun()


setup()
panels.results(jobs, BATCH, ENDED_SEEN)
