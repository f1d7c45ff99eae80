"""Portfolio: equity and drawdown, cash and P&L, open positions, and trades on the candles."""

import streamlit as st

from strategy_agent.ui.widgets import (
    MONEY,
    PCT,
    PRICE,
    QTY,
    SIGNED,
    empty_state,
    live,
    live_badge,
    page_header,
    pick_strategy_or_stop,
    status_badge,
    table,
)
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import format as fmt
from strategy_agent.views.charts import candles_figure, equity_figure
from strategy_agent.views.portfolio import overview, symbol_chart

page_header("Portfolio", "Where the money is: equity, drawdown, positions and every fill.")
runner = get_runner()
strategy_id = pick_strategy_or_stop()


@live(runner.is_running(strategy_id))
def portfolio() -> None:
    with open_store() as store:
        view = overview(store, strategy_id)
    live_badge(view.request.exchange.trading_mode)
    status_badge(view.status, view.status_reason)
    if view.blown_up:
        st.error(
            f"**Account blown.** Equity is {fmt.money(view.equity)} "
            f"({fmt.pct(view.return_pct)} on the {fmt.money(view.initial_capital)} initial "
            f"capital) with {fmt.money(view.gross_exposure)} of gross exposure still open: the "
            "strategy has lost more than it had. Exposure as a share of equity is not defined "
            "below zero equity; the gross figure is what is at risk.",
            icon=":material/crisis_alert:",
        )
    top = st.columns(4)
    top[0].metric(
        "Equity (USDT)",
        fmt.number(view.equity),
        delta=fmt.pct(view.return_pct) if view.started else None,
        border=True,
    )
    top[1].metric("Cash (USDT)", fmt.number(view.cash), border=True)
    top[2].metric(
        "Gross exposure (USDT)",
        fmt.number(view.gross_exposure),
        help=f"Sum of the open positions' notional; net {fmt.signed_money(view.net_exposure)}",
        border=True,
    )
    top[3].metric(
        "Exposure (% of equity)",
        "n/a" if view.exposure_pct is None else fmt.pct(view.exposure_pct, signed=False, digits=1),
        delta="equity ≤ 0" if view.exposure_pct is None else None,
        delta_color="red",
        delta_arrow="off",
        help="Gross exposure divided by equity (undefined when equity is zero or negative)",
        border=True,
    )
    bottom = st.columns(3)
    bottom[0].metric("Realized P&L (USDT)", fmt.signed_money(view.realized_pnl, ""), border=True)
    bottom[1].metric(
        "Unrealized P&L (USDT)", fmt.signed_money(view.unrealized_pnl, ""), border=True
    )
    bottom[2].metric("Fees paid (USDT)", fmt.number(view.fees_paid), border=True)
    if not view.started:
        empty_state(
            "No cycle yet: step or start this strategy on the Strategies page.",
            "strategies",
            "Go to Strategies",
        )
        return
    with st.container(border=True):
        st.markdown("**Equity and drawdown**")
        if view.benchmark is not None:
            st.caption(
                "Dashed: the initial capital held in an equal-weight buy-and-hold of the "
                "strategy's symbols from its first cycle."
            )
        st.plotly_chart(
            equity_figure(view.equity_curve, view.initial_capital, benchmark=view.benchmark),
            key="equity",
        )
    with st.container(border=True):
        st.markdown("**Open positions**")
        if view.positions.empty:
            st.caption("No open position: the strategy is all in cash.")
        else:
            positions = view.positions
            if positions["Note"].isna().all():  # a note only for dust
                positions = positions.drop(columns=["Note"])
            table(
                positions,
                {
                    "Quantity": QTY,
                    "Entry (USDT)": PRICE,
                    "Mark (USDT)": PRICE,
                    "Notional (USDT)": MONEY,
                    "Unrealized P&L (USDT)": SIGNED,
                    "Unrealized P&L (%)": PCT,
                },
            )
    with st.container(border=True):
        st.markdown("**Price and trades**")
        symbols = view.request.trading.symbols
        symbol = (
            st.segmented_control(
                "Symbol", symbols, default=symbols[0], key=f"chart_symbol_{strategy_id}"
            )
            or symbols[0]
        )
        with open_store() as store:
            chart = symbol_chart(store, strategy_id, symbol)
        if chart.candles.empty:
            st.caption(
                "No candle recorded for this symbol yet: each cycle records the candle it "
                "traded on, so the chart fills as the strategy runs."
            )
        else:
            st.plotly_chart(
                candles_figure(symbol, chart.candles, chart.fills, chart.interval_ms),
                key="candles",
            )


portfolio()
