"""Strategy Agent's app: a router over the pages (run with `make run`)."""

import streamlit as st

st.set_page_config(
    page_title="Strategy Agent",
    page_icon=":material/candlestick_chart:",
    layout="wide",
)

pages = {
    "Trade": [
        st.Page(
            "app_pages/strategies.py",
            title="Strategies",
            icon=":material/view_list:",
            default=True,
        ),
        st.Page(
            "app_pages/prompt_lab.py",
            title="Prompt lab",
            icon=":material/science:",
        ),
    ],
    "Analyse": [
        st.Page(
            "app_pages/portfolio.py",
            title="Portfolio",
            icon=":material/account_balance_wallet:",
        ),
        st.Page(
            "app_pages/decisions.py",
            title="Decisions",
            icon=":material/timeline:",
        ),
        st.Page(
            "app_pages/digest.py",
            title="Digest",
            icon=":material/summarize:",
        ),
        st.Page(
            "app_pages/leaderboard.py",
            title="Leaderboard",
            icon=":material/leaderboard:",
        ),
        st.Page(
            "app_pages/backtest.py",
            title="Backtest",
            icon=":material/replay:",
        ),
    ],
}

st.navigation(pages).run()
