"""Prompt lab queries: the effective prompt, saving versions, templates."""

from __future__ import annotations

from strategy_agent.decision.prompt_library import load_template
from strategy_agent.models import UserRequest
from strategy_agent.trading_history.store import SqliteStore
from strategy_agent.views import prompt_lab as lab
from tests.app.helpers import Populated


def test_prompt_state_of_a_builtin_rule(store: SqliteStore, history: Populated) -> None:
    state = lab.prompt_state(store, history.trend_id)
    assert state.text == "" and state.source == "none"
    assert not state.uses_prompt and state.model == "builtin/ema_crossover"


def test_prompt_state_of_a_template(store: SqliteStore) -> None:
    request = UserRequest.model_validate(
        {
            "llm": {"provider": "openai", "model_id": "gpt-4o-mini"},
            "trading": {"template_id": "balanced_trend"},
        }
    )
    sid = store.create_strategy(request, 1)
    state = lab.prompt_state(store, sid)
    assert state.text == load_template("balanced_trend")
    assert state.source == "template balanced_trend" and state.uses_prompt


def test_save_prompt_versions_and_applies_it(store: SqliteStore, history: Populated) -> None:
    first = lab.save_prompt(store, history.trend_id, "Mine", "Buy dips.", now_ms=10)
    again = lab.save_prompt(store, history.trend_id, "Mine", "Buy dips.", now_ms=11)
    second = lab.save_prompt(store, history.trend_id, "Mine", "Buy deep dips.", now_ms=12)
    assert (first.version, again.version, second.version) == (1, 1, 2)
    assert [v.version for v in lab.prompt_versions(store, "Mine")] == [2, 1]
    assert "+Buy deep dips." in lab.version_diff(store, "Mine", 2)
    state = lab.prompt_state(store, history.trend_id)
    assert state.text == "Buy deep dips." and state.source == "custom"
    assert store.cycle_count(history.trend_id) == 150  # history untouched


def test_template_choices_list_the_shipped_templates() -> None:
    choices = lab.template_choices()
    assert {"balanced_trend", "conservative_mean_reversion", "aggressive_momentum"} <= set(choices)
    assert all(title for title in choices.values())
