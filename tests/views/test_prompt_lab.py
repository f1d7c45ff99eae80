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
    sid = history.trend_id
    first = lab.save_prompt(store, sid, "Buy dips.", now_ms=10)
    again = lab.save_prompt(store, sid, "  Buy dips. ", now_ms=11)
    second = lab.save_prompt(store, sid, "Buy deep dips.", now_ms=12)
    assert (first.version, again.version, second.version) == (1, 1, 2)
    assert [v.version for v in lab.prompt_versions(store, sid)] == [2, 1]
    diff = lab.version_diff(store, sid, 2)
    assert "--- v1" in diff and "+++ v2" in diff and "+Buy deep dips." in diff
    assert "+Buy dips." in lab.version_diff(store, sid, 1)
    state = lab.prompt_state(store, sid)
    assert state.text == "Buy deep dips." and state.source == "custom"
    assert state.version == 2
    assert store.get_strategy(sid).request.trading.template_id is None
    assert store.cycle_count(sid) == 150  # history untouched


def test_versions_belong_to_the_strategy_not_to_its_name(store: SqliteStore) -> None:
    llm = {"provider": "openai", "model_id": "gpt-4o-mini"}
    first, second = (
        store.create_strategy(UserRequest.model_validate({"llm": llm}), now) for now in (1, 2)
    )
    assert store.get_strategy(first).name == store.get_strategy(second).name  # "Demo strategy"
    lab.save_prompt(store, first, "Only BTC.", now_ms=3)
    lab.save_prompt(store, first, "Only ETH.", now_ms=4)
    assert lab.prompt_versions(store, second) == []
    mine = lab.save_prompt(store, second, "Only SOL.", now_ms=5)
    assert mine.version == 1
    assert [v.text for v in lab.prompt_versions(store, first)] == ["Only ETH.", "Only BTC."]
    assert lab.prompt_state(store, second).text == "Only SOL."


def test_a_template_or_config_prompt_has_no_saved_version(store: SqliteStore) -> None:
    request = UserRequest.model_validate(
        {
            "llm": {"provider": "openai", "model_id": "gpt-4o-mini"},
            "trading": {"custom_prompt": "From the config file."},
        }
    )
    sid = store.create_strategy(request, 1)
    assert lab.prompt_state(store, sid).version is None
    assert lab.save_prompt(store, sid, "From the config file.", now_ms=2).version == 1
    assert lab.prompt_state(store, sid).version == 1


def test_template_choices_list_the_shipped_templates() -> None:
    choices = lab.template_choices()
    assert {"balanced_trend", "conservative_mean_reversion", "aggressive_momentum"} <= set(choices)
    assert all(title for title in choices.values())
