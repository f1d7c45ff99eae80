"""Which prompt a strategy runs with: an LLM strategy without one gets a named default template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strategy_agent.decision.prompt_choice import (
    DEFAULT_TEMPLATE_ID,
    prompt_choice,
    template_in_use,
)
from strategy_agent.decision.prompt_library import list_templates, load_template
from strategy_agent.factory import prompt_text_for
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import prompt_lab
from strategy_agent.views.forms import CUSTOM_PROMPT, values_from_request


class _Rule:
    """Buys and holds (a stand-in policy: its docstring must never become an LLM's prompt)."""

    name = "llm:openai/gpt-4o-mini"


def _request(provider: str = "openai", **trading: Any) -> UserRequest:
    model = "gpt-4o-mini" if provider != "builtin" else "ema_crossover"
    return UserRequest.model_validate(
        {"llm": {"provider": provider, "model_id": model}, "trading": trading}
    )


def test_the_default_template_is_a_shipped_template() -> None:
    assert DEFAULT_TEMPLATE_ID in {t.template_id for t in list_templates()}


def test_an_llm_strategy_without_a_prompt_runs_with_the_default_template() -> None:
    text = prompt_text_for(_request(), _Rule())  # type: ignore[arg-type]
    assert text == load_template(DEFAULT_TEMPLATE_ID)
    assert "stand-in policy" not in text and "Built-in rule" not in text


@pytest.mark.parametrize(
    ("trading", "source", "template"),
    [
        ({"custom_prompt": "  Only BTC.  "}, "custom", None),
        ({"custom_prompt": "Only BTC.", "template_id": "aggressive_momentum"}, "custom", None),
        (
            {"template_id": "aggressive_momentum"},
            "template aggressive_momentum",
            "aggressive_momentum",
        ),
        ({"custom_prompt": "   "}, f"default template {DEFAULT_TEMPLATE_ID}", DEFAULT_TEMPLATE_ID),
        ({}, f"default template {DEFAULT_TEMPLATE_ID}", DEFAULT_TEMPLATE_ID),
    ],
)
def test_own_text_then_template_then_default(
    trading: dict[str, Any], source: str, template: str | None
) -> None:
    request = _request(**trading)
    choice = prompt_choice(request.trading, uses_prompt=True)
    assert (choice.source, choice.template_id) == (source, template)
    assert template_in_use(request.trading, uses_prompt=True) == template
    assert choice.is_default == source.startswith("default")
    expected = "Only BTC." if source == "custom" else load_template(template or "")
    assert choice.text == expected
    assert prompt_text_for(request, _Rule()) == expected  # type: ignore[arg-type]


def test_a_builtin_rule_gets_no_default_template() -> None:
    request = _request("builtin")
    choice = prompt_choice(request.trading, uses_prompt=False)
    assert (choice.text, choice.source, choice.template_id) == ("", "none", None)
    assert prompt_text_for(request, _Rule()).startswith("Built-in rule llm:openai")  # type: ignore[arg-type]


def test_the_prompt_lab_names_the_default_template(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "lab.db") as store:
        sid = store.create_strategy(_request(), 1)
        state = prompt_lab.prompt_state(store, sid)
    assert state.source == f"default template {DEFAULT_TEMPLATE_ID}"
    assert state.text == load_template(DEFAULT_TEMPLATE_ID) and state.uses_prompt


def test_the_strategy_form_shows_the_template_in_use() -> None:
    assert values_from_request(_request())["trading.prompt_choice"] == DEFAULT_TEMPLATE_ID
    custom = _request(custom_prompt="Only BTC.")
    assert values_from_request(custom)["trading.prompt_choice"] == CUSTOM_PROMPT
    assert values_from_request(_request("builtin"))["trading.prompt_choice"] == CUSTOM_PROMPT
