"""Panels of the Backtest page: the estimate, the progress of a running batch, the comparison.

Only rendering lives here; data comes from ``strategy_agent.views.backtest``
and ``views.backtest_compare``, progress from the job's ``Progress`` (polled
by a fragment every second while the batch runs; the job's thread never
touches Streamlit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from strategy_agent.backtest.progress import ProgressSnapshot, format_duration
from strategy_agent.ui.widgets import (
    INTEGER,
    MONEY,
    PCT,
    PCT_PLAIN,
    RATIO,
    USD,
    ranking_table,
    selected_column,
    table,
)
from strategy_agent.ui_runtime import open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.backtest_compare import (
    BatchComparison,
    batch_comparison,
    batch_label,
    batches,
    shown_columns,
)
from strategy_agent.views.charts import comparison_figure
from strategy_agent.views.leaderboard_windows import rank

if TYPE_CHECKING:
    from strategy_agent.backtest.jobs import BacktestJob, BacktestJobs
    from strategy_agent.views.backtest import PlanSummary

POLL_EVERY = "1s"
FORMATS = {
    "#": INTEGER,
    "Samples": INTEGER,
    "Return (%)": PCT,
    "Buy & hold (%)": PCT,
    "CAGR (%)": PCT,
    "Sharpe": RATIO,
    "Sortino": RATIO,
    "Max drawdown (%)": lambda v: fmt.pct(v, signed=False),
    "Trades": lambda v: fmt.integer(v) if float(v or 0).is_integer() else fmt.number(v, 1),
    "Win rate (%)": PCT_PLAIN,
    "Profit factor": RATIO,
    "Fees (USDT)": MONEY,
    "LLM tokens": INTEGER,
    "LLM cost (USD)": USD,
    "Cycles": INTEGER,
    "LLM calls": INTEGER,
    "Prompt tokens": INTEGER,
    "Completion tokens": INTEGER,
    "Dollars (USD)": USD,
}


def estimate_panel(summary: PlanSummary, budget: float | None) -> bool:
    """The plan before it runs; True when it must not run (a budget it cannot bound)."""
    st.markdown(f"**Window:** {summary.window}  \n**Data:** {summary.data}")
    cols = st.columns(5)
    cols[0].metric("Runs", f"{summary.runs:,}", border=True)
    cols[1].metric("Cycles", f"{summary.cycles:,}", border=True)
    cols[2].metric("LLM calls", f"{summary.calls:,}", border=True)
    cols[3].metric(
        "Tokens (estimate)",
        f"~{fmt.compact(summary.tokens)}",
        border=True,
        help=f"About {summary.tokens:,} prompt and completion tokens in all.",
    )
    dollars = "unknown" if summary.cost_usd is None else fmt.usd(summary.cost_usd)
    cols[4].metric("Dollars (estimate)", dollars, border=True)
    table(pd.DataFrame(summary.estimate_rows), FORMATS, key="bt_estimate_table")
    if summary.calls:
        st.caption(
            "Estimated from prompts rendered as the runs will render them; replies already in "
            "the response cache cost nothing."
        )
    else:
        st.caption("Built-in rules call no LLM: this backtest costs nothing.")
    for warning in summary.in_sample:
        st.warning(warning, icon=":material/history_edu:")
    for note in summary.notes:
        st.caption(f":material/info: {note}")
    if budget is not None and summary.unpriced:
        st.error(
            f"A dollar budget cannot bound {', '.join(summary.unpriced)}: no price is known for "
            f"its model. Set input_cost_per_mtok and output_cost_per_mtok in its [llm], or "
            f"clear the budget.",
            icon=":material/error:",
        )
        return True
    return False


def results(jobs: BacktestJobs, batch_key: str, quiet_key: str | None = None) -> None:
    """The progress of the chosen batch while it runs, then its comparison; how the batch
    ended is said until a new estimate (which puts the batch's id under ``quiet_key``)."""
    chosen = st.session_state.get(batch_key)
    job = jobs.get(chosen) if chosen else None
    running = job is not None and job.running  # before reading the runs: they are final if not
    with open_store() as store:
        known = batches(store)
    if not known and job is None:
        return
    with st.container(border=True):
        st.markdown("**4 · Comparison**")
        ids: list[str] = [b.batch_id for b in known]
        if chosen not in ids and job is None:
            chosen = ids[0]
        if chosen in ids:  # a batch just started may not be stored yet
            labels = {b.batch_id: batch_label(b) for b in known}
            picked = str(
                st.selectbox(
                    "Batch",
                    ids,
                    index=ids.index(chosen),
                    format_func=lambda batch_id: labels[batch_id],
                    key=f"bt_batch_{chosen}",  # a new choice (or run) starts a fresh picker
                )
            )
            if picked != chosen:  # another batch; a running one goes on in the background
                chosen = picked
                job = jobs.get(picked)
                running = job is not None and job.running
            st.session_state[batch_key] = chosen
        if job is not None and running:
            _progress(job)
            return
        if job is not None and (quiet_key is None or st.session_state.get(quiet_key) != chosen):
            _ended(job)
        _comparison(chosen)


def _progress(job: BacktestJob) -> None:
    @st.fragment(run_every=POLL_EVERY)
    def poll() -> None:
        snapshot = job.progress.snapshot()
        progress_bar(snapshot)
        if snapshot.state == "running" and job.running:
            st.button("Stop", icon=":material/stop:", key="bt_stop", on_click=job.stop)
            st.caption("The comparison appears here when the runs end; the page can be left.")
        else:
            st.rerun()  # land on the comparison

    poll()


def progress_bar(snapshot: ProgressSnapshot) -> None:
    """A progress bar with cycles, elapsed, ETA, tokens and dollars."""
    st.progress(
        snapshot.fraction,
        text=f"{snapshot.cycles_done:,} / {snapshot.cycles_total:,} cycles · "
        f"{snapshot.fraction * 100:.0f} %",
    )
    cols = st.columns(5)
    cols[0].metric("Cycles done", f"{snapshot.cycles_done:,} / {snapshot.cycles_total:,}")
    cols[1].metric("Elapsed", format_duration(snapshot.elapsed_s))
    cols[2].metric("ETA", format_duration(snapshot.eta_s))
    cols[3].metric("Tokens", f"{snapshot.tokens:,}")
    cols[4].metric(
        "Dollars", "unknown" if snapshot.cost_usd is None else fmt.usd(snapshot.cost_usd)
    )


def _ended(job: BacktestJob) -> None:
    snapshot = job.progress.snapshot()
    spent = (
        f"{snapshot.tokens:,} tokens, "
        + ("dollars unknown" if snapshot.cost_usd is None else fmt.usd(snapshot.cost_usd))
        + f", in {format_duration(snapshot.elapsed_s)}"
    )
    text = f"Backtest {snapshot.state}: {snapshot.cycles_done:,} cycles, {spent}"
    if snapshot.reason:
        text += f" ({snapshot.reason})"
    if snapshot.state == "done":
        st.success(text, icon=":material/check_circle:")
    elif snapshot.state == "stopped":
        st.warning(text, icon=":material/stop_circle:")
    else:
        st.error(text, icon=":material/error:")


def _comparison(batch_id: str | None) -> None:
    if batch_id is None:
        return
    with open_store() as store:
        comparison = batch_comparison(store, batch_id)
    if comparison.table.empty:
        st.caption("This batch has no run yet.")
        return
    _table(comparison)
    with st.expander(f"Each run ({len(comparison.runs)})"):
        table(comparison.runs, FORMATS, key=f"bt_runs_{batch_id}")
    st.markdown("**Equity curves** · normalised to 100 at the initial capital")
    st.caption(
        "Dashed, in each run's colour: its buy-and-hold of its own symbols over the same "
        "candles, with its fee on entry and exit. Click a name in the legend to hide a run "
        "and its benchmark."
    )
    if comparison.curves:
        st.plotly_chart(
            comparison_figure(comparison.curves, comparison.benchmarks), key="bt_curves"
        )
    st.page_link(
        "app_pages/leaderboard.py",
        label="See these runs on the Leaderboard",
        icon=":material/leaderboard:",
    )


def _table(comparison: BatchComparison) -> None:
    key = f"bt_compare_{comparison.batch_id}"
    by = selected_column(key) or "Return (%)"
    ranked = rank(comparison.table, by)
    llm = bool(comparison.table["LLM tokens"].notna().any())  # else every config is a rule
    st.caption(
        f"Window {comparison.window} on {comparison.data}: every config replayed the same "
        f"candles. Ranked by {by} (missing values last); click a column header to rank by it."
        + (
            " Several samples: each figure is their mean; return and Sharpe show the "
            "bootstrap 95 % interval of the mean, and configs whose return intervals overlap "
            "are not distinguishable."
            if comparison.sampled
            else ""
        )
    )
    ranking_table(
        ranked,
        key,
        FORMATS,
        column_order=["#", *shown_columns(comparison.sampled, llm)],
        column_config={
            "#": st.column_config.NumberColumn(pinned=True),
            "Config": st.column_config.TextColumn(pinned=True),
            "Notes": st.column_config.TextColumn(width="large"),
        },
    )
    st.caption(
        "Buy & hold: equal weight in the config's own symbols over the same candles, fee on "
        "entry and exit. Under 10 closed trades is too few to judge. In-sample: the window "
        "starts before the model's training cutoff, so it may have known what happened. "
        "More figures to the right; the table's eye icon shows the columns left out. "
        "Formulas: README, Metrics."
    )
