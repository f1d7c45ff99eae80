"""Leaderboard: every strategy side by side, their curves normalised, and buy-and-hold."""

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
from strategy_agent.views.leaderboard import leaderboard

page_header(
    "Leaderboard",
    "All strategies compared: returns, risk, trading and LLM costs, against buy-and-hold.",
)
runner = get_runner()


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
            "shown from 30 cycles on; win rate and profit factor count closed trades after fees."
        )
        table(
            result.table.drop(columns=["id"]),
            {
                "Return (%)": PCT,
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
            column_config={"Strategy": st.column_config.TextColumn(pinned=True)},
        )
    with st.container(border=True):
        st.markdown("**Equity curves** · normalised to 100 at the initial capital")
        if not result.curves:
            st.caption("No cycle yet: run a strategy to draw its curve.")
            return
        st.plotly_chart(comparison_figure(result.curves, result.benchmark), key="comparison")


board()
