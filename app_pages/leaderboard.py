"""Leaderboard: strategies and backtest runs ranked only against others over the same window
and data, with buy-and-hold."""

import streamlit as st

from strategy_agent.ui.widgets import (
    INTEGER,
    MONEY,
    PCT,
    PCT_PLAIN,
    RATIO,
    USD,
    empty_state,
    live,
    page_header,
    ranking_table,
    selected_column,
)
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.charts import comparison_figure
from strategy_agent.views.leaderboard import Leaderboard, WindowGroup, leaderboard
from strategy_agent.views.leaderboard_windows import DEFAULT_RANK_BY

page_header(
    "Leaderboard",
    "Strategies and backtest runs compared over the same window and data: returns, risk, "
    "trading and LLM costs, against buy-and-hold.",
)
runner = get_runner()
MAX_CURVES_TOGETHER = 20

FORMATS = {
    "#": INTEGER,
    "Return (%)": PCT,
    "Buy & hold (%)": PCT,
    "CAGR (%)": PCT,
    "Volatility (%)": PCT_PLAIN,
    "Sharpe": RATIO,
    "Sortino": RATIO,
    "Max drawdown (%)": lambda v: fmt.pct(v, signed=False),
    "Drawdown duration": fmt.duration,
    "Calmar": RATIO,
    "Win rate (%)": PCT_PLAIN,
    "Profit factor": RATIO,
    "Expectancy (USDT)": MONEY,
    "Exposure (%)": PCT_PLAIN,
    "Fees (USDT)": MONEY,
    "Fees / gross P&L (%)": PCT_PLAIN,
    "LLM cost (USD)": USD,
    "Cost per trade (USD)": USD,
    "Equity (USDT)": MONEY,
    "Cycles": INTEGER,
    "Trades": INTEGER,
}


def window_ranking(result: Leaderboard, group: WindowGroup) -> None:
    key = f"rank_{group.key}"
    by = selected_column(key) or DEFAULT_RANK_BY
    frame = result.group_table(group, by)
    ids = list(frame["id"])
    shown = frame.drop(columns=["id"])
    if shown["Note"].isna().all():
        shown = shown.drop(columns=["Note"])
    st.markdown(f"**{group.label}**")
    kind = "backtest run" if group.backtest else "strategy"
    kinds = "backtest runs" if group.backtest else "strategies"
    if group.window is None or group.window.last_ts is None:
        st.caption("Not ranked: no figures over a window yet.")
    elif len(ids) == 1:
        st.caption(f"The only {kind} over this window: nothing to rank it against.")
    else:
        st.caption(f"{len(ids)} {kinds} ranked by {by} (missing values last).")
    marked = [sid for sid in ids if sid in result.in_sample]
    if marked:
        verb = "is" if len(marked) == 1 else "are"
        st.caption(
            f":material/history_edu: {len(marked)} of these {len(ids)} runs {verb} in-sample "
            "for its model (marked in Note): "
            "the window starts before the model's training cutoff, so it may have known what "
            "happened."
        )
    ranking_table(
        shown,
        key,
        FORMATS,
        not_available={
            ids.index(sid): missing.columns
            for sid, missing in result.unavailable.items()
            if sid in ids
        },
        column_config={"Strategy": st.column_config.TextColumn(pinned=True)},
    )
    names = dict(zip(frame["id"], frame["Strategy"], strict=True))
    for sid in ids:
        if sid in result.unavailable:
            st.caption(f":material/warning: {names[sid]}: {result.unavailable[sid].reason}")


@live(bool(runner.running_ids()))
def board() -> None:
    with open_store() as store:
        result = leaderboard(store)
    if result.table.empty:
        empty_state("No strategy yet: create one and run it.", "strategies", "Go to Strategies")
        return
    with st.container(border=True):
        st.markdown("**Ranking** · one table per window · click a column header to rank by it")
        st.caption(
            "Strategies are ranked only against others that traded the same data over the same "
            "window: same market, interval and symbols, same first and last candle. Backtest "
            "runs are ranked only against runs over the same window of the same data (same "
            "sha256 of the candles or CSV file), never against live strategies; a run's "
            "status is how it ended (done, stopped or failed, with the reason); a run whose window starts "
            "before its model's training cutoff is marked in-sample for this model. Higher "
            "ranks first (lower for drawdown, volatility, fees and costs); a missing figure "
            "ranks last. Annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar; "
            "risk-free rate 0) are shown from 30 cycles on, CAGR and Calmar over 30 days or "
            "more; fewer than 10 closed trades is too few to judge. Buy & hold is an equal-weight position in the strategy's own "
            "symbols over its own cycles, with its fee on entry and exit. Formulas: README, "
            "Metrics."
        )
        for group in result.windows:
            window_ranking(result, group)
    with st.container(border=True):
        st.markdown("**Equity curves** · normalised to 100 at the initial capital")
        curves, benchmarks = result.curves_for(curve_ids(result))
        if not curves:
            st.caption("No cycle yet: run a strategy to draw its curve.")
            return
        st.caption(
            "Dashed, in each strategy's colour: its buy-and-hold benchmark. Click a name in "
            "the legend to hide a strategy and its benchmark. Curves of different windows "
            "are not comparable."
        )
        st.plotly_chart(comparison_figure(curves, benchmarks), key="comparison")


def curve_ids(result: Leaderboard) -> list[str] | None:
    """Every curve (``None``) up to ``MAX_CURVES_TOGETHER``; beyond, one window's, picked."""
    groups = [g for g in result.windows if any(result.curve_label(i) for i in g.ids)]
    if len(result.drawn) <= MAX_CURVES_TOGETHER or len(groups) < 2:
        return None
    picked = st.selectbox(
        f"Window ({len(result.drawn)} curves: one window at a time)",
        range(len(groups)),
        format_func=lambda i: f"{groups[i].label} ({len(groups[i].ids)})",
        key="curves_window",
    )
    return groups[picked or 0].ids


board()
