"""The router: every page renders on an empty database and says what to do next."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.helpers import PAGES, Populated, open_page, texts

EMPTY_HINTS = {
    "strategies": "No strategy yet",
    "prompt_lab": "No strategy yet",
    "portfolio": "No strategy yet",
    "decisions": "No strategy yet",
    "digest": "No strategy yet",
    "leaderboard": "No strategy yet",
}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_empty_database_with_a_next_step(app_db: Path, page: str) -> None:
    app = open_page(page)
    assert EMPTY_HINTS[page] in texts(app)
    assert app.title[0].value  # a page title


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_populated_database(populated: Populated, page: str) -> None:
    app = open_page(page)
    assert "No strategy yet" not in texts(app)


def test_default_page_is_strategies(app_db: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.app.helpers import APP

    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert app.title[0].value == "Strategies"
