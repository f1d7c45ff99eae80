"""Leaderboard: strategies ranked only against others over the same window, with buy-and-hold."""

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
    "Strategies compared over the same window: returns, risk, trading and LLM costs, "
    "against buy-and-hold.",
)
runner = get_runner()

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
    if group.window is None or group.window.last_ts is None:
        st.caption("Not ranked: no figures over a window yet.")
    elif len(ids) == 1:
        st.caption("The only strategy over this window: nothing to rank it against.")
    else:
        st.caption(f"{len(ids)} strategies ranked by {by} (missing values last).")
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
            "window: same market, interval and symbols, same first and last candle. Higher "
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
        if not result.curves:
            st.caption("No cycle yet: run a strategy to draw its curve.")
            return
        st.caption(
            "Dashed, in each strategy's colour: its buy-and-hold benchmark. Click a name in "
            "the legend to hide a strategy and its benchmark. Curves of different windows "
            "are not comparable."
        )
        st.plotly_chart(comparison_figure(result.curves, result.benchmarks), key="comparison")


board()
