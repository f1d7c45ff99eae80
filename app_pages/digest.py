"""Digest: how each instrument has traded (the feedback the composer reads) and closed trades."""

import streamlit as st

from strategy_agent.ui.widgets import (
    MONEY,
    PCT,
    PCT_PLAIN,
    PRICE,
    QTY,
    SIGNED,
    TIME,
    empty_state,
    live,
    page_header,
    pick_strategy_or_stop,
)
from strategy_agent.ui.widgets import table as grid
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views.digest import closed_trades, digest_table

PAGE_SIZE = 50

page_header(
    "Digest",
    "Per-instrument results the composer uses as feedback, and every closed round trip.",
)
runner = get_runner()
strategy_id = pick_strategy_or_stop()


@live(runner.is_running(strategy_id))
def digest() -> None:
    with open_store() as store:
        digest_frame = digest_table(store, strategy_id)
    with st.container(border=True):
        st.markdown("**Trade digest by instrument**")
        if digest_frame.empty:
            empty_state(
                "No trade yet: run some cycles on the Strategies page.",
                "strategies",
                "Go to Strategies",
            )
            return
        grid(
            digest_frame,
            {
                "Net realized P&L (USDT)": SIGNED,
                "Win rate (%)": PCT_PLAIN,
                "Avg holding (h)": lambda v: f"{v:,.1f}",
                "Avg entry (USDT)": PRICE,
                "Max drawdown (USDT)": MONEY,
                "Recent score (%)": PCT,
                "Last trade": TIME,
            },
        )
    with st.container(border=True):
        page = st.session_state.get(f"trades_page_{strategy_id}", 1)
        with open_store() as store:
            trades = closed_trades(store, strategy_id, page=page, page_size=PAGE_SIZE)
        st.markdown(f"**Closed trades** · {trades.total:,} in all")
        if trades.total == 0:
            st.caption("No round trip closed yet: positions still open show on the Portfolio page.")
            return
        grid(
            trades.rows,
            {
                "Quantity": QTY,
                "Entry": TIME,
                "Exit": TIME,
                "Entry (USDT)": PRICE,
                "Exit (USDT)": PRICE,
                "Net P&L (USDT)": SIGNED,
                "Net P&L (%)": PCT,
                "Fees (USDT)": MONEY,
                "Holding (h)": lambda v: f"{v:,.1f}",
            },
        )
        if trades.pages > 1:
            st.number_input(
                f"Page (of {trades.pages})",
                1,
                trades.pages,
                key=f"trades_page_{strategy_id}",
                width=200,
            )


digest()
