"""Pages name the template an LLM strategy without a prompt of its own runs with."""

from __future__ import annotations

from pathlib import Path

from strategy_agent.decision.prompt_choice import DEFAULT_TEMPLATE_ID
from strategy_agent.decision.prompt_library import load_template
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.store import SqliteStore
from tests.app.helpers import open_page, texts


def test_prompt_lab_shows_the_default_template_in_use(app_db: Path) -> None:
    request = UserRequest.model_validate({"llm": {"provider": "openai", "model_id": "gpt-4o-mini"}})
    with SqliteStore(app_db) as store:
        sid = store.create_strategy(request, 1)
    app = open_page("prompt_lab", selected_strategy=sid)
    page = texts(app)
    assert f"in use: default template {DEFAULT_TEMPLATE_ID}" in page
    assert f"runs with the default template `{DEFAULT_TEMPLATE_ID}`" in page
    assert app.text_area(key=f"lab_prompt_{sid}").value == load_template(DEFAULT_TEMPLATE_ID)


def test_strategy_form_marks_the_default_template(app_db: Path) -> None:
    app = open_page("strategies")
    app.button(key="open_form").click().run()
    assert not app.exception
    options = app.selectbox(key="form.trading.prompt_choice").options
    assert "Balanced trend follower (the default for an LLM)" in options
