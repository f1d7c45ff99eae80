"""Leaderboard: every strategy side by side, their curves normalised, each with buy-and-hold."""

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
    table,
)
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.charts import comparison_figure
from strategy_agent.views.leaderboard import Leaderboard, leaderboard

page_header(
    "Leaderboard",
    "All strategies compared: returns, risk, trading and LLM costs, against buy-and-hold.",
)
runner = get_runner()


def ranking(result: Leaderboard) -> None:
    frame = result.table.drop(columns=["id"])
    if frame["Note"].isna().all():
        frame = frame.drop(columns=["Note"])
    ids = list(result.table["id"])
    table(
        frame,
        {
            "Return (%)": PCT,
            "Buy & hold (%)": PCT,
            "Sharpe": RATIO,
            "Sortino": RATIO,
            "Max drawdown (%)": lambda v: fmt.pct(v, signed=False),
            "Win rate (%)": PCT_PLAIN,
            "Profit factor": RATIO,
            "Fees (USDT)": MONEY,
            "LLM cost (USD)": USD,
            "Cost per trade (USD)": USD,
            "Equity (USDT)": MONEY,
            "Cycles": INTEGER,
            "Trades": INTEGER,
        },
        not_available={
            ids.index(sid): missing.columns for sid, missing in result.unavailable.items()
        },
        column_config={"Strategy": st.column_config.TextColumn(pinned=True)},
    )
    names = dict(zip(result.table["id"], result.table["Strategy"], strict=True))
    for sid, missing in result.unavailable.items():
        st.caption(f":material/warning: {names.get(sid, sid)}: {missing.reason}")


@live(bool(runner.running_ids()))
def board() -> None:
    with open_store() as store:
        result = leaderboard(store)
    if result.table.empty:
        empty_state("No strategy yet: create one and run it.", "strategies", "Go to Strategies")
        return
    with st.container(border=True):
        st.markdown("**Ranking** · click a column header to sort")
        st.caption(
            "Sharpe and Sortino are annualised from the equity curve (risk-free rate 0) and "
            "shown from 30 cycles on; win rate and profit factor count closed trades after "
            "fees. Buy & hold is an equal-weight position in the strategy's own symbols over "
            "its own cycles."
        )
        ranking(result)
    with st.container(border=True):
        st.markdown("**Equity curves** · normalised to 100 at the initial capital")
        if not result.curves:
            st.caption("No cycle yet: run a strategy to draw its curve.")
            return
        st.caption(
            "Dashed, in each strategy's colour: its buy-and-hold benchmark. Click a name in "
            "the legend to hide a strategy and its benchmark."
        )
        st.plotly_chart(comparison_figure(result.curves, result.benchmarks), key="comparison")


board()
