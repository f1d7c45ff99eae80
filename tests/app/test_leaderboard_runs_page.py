"""Leaderboard page with backtest runs: their own window tables, said so, in-sample marked."""

from __future__ import annotations

from pathlib import Path

from tests.app.helpers import open_page, shown, texts
from tests.views.test_leaderboard_runs import live_of, rising, run_of


def test_backtest_runs_get_their_own_tables_and_the_page_says_why(app_db: Path) -> None:
    run_of(app_db, "A1", rising(10))
    run_of(app_db, "A2", rising(20), in_sample="in-sample for this model: its training ...")
    live_of(app_db, "Live", rising(30))
    app = open_page("leaderboard")
    tables = [set(shown(element)["Strategy"]) for element in app.dataframe]
    assert tables == [{"A1 · backtest", "A2 · backtest"}, {"Live"}]
    page = texts(app)
    assert "Backtest · simulated (data sha256 aaaaaaaaaaaa) · 1970-01-01 00:00 UTC" in page
    assert "2 backtest runs ranked by Return (%) (missing values last)." in page
    assert "1 of these 2 runs is in-sample for its model" in page
    assert "Backtest runs are ranked only against runs over the same window of the same data" in (
        page
    )
    note = shown(app.dataframe[0]).set_index("Strategy").loc["A2 · backtest", "Note"]
    assert note.startswith("In-sample for this model")
