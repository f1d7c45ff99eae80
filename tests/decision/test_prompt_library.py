from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.decision.prompt_library import list_templates, load_template, unified_diff
from strategy_agent.errors import ConfigurationError


def test_shipped_templates_are_listed_with_titles() -> None:
    templates = {t.template_id: t for t in list_templates()}
    assert {"balanced_trend", "conservative_mean_reversion", "aggressive_momentum"} <= set(
        templates
    )
    assert templates["balanced_trend"].title == "Balanced trend follower"
    for template in templates.values():
        assert len(template.text) > 100
        assert not template.text.startswith("#")


def test_load_template_returns_the_text_and_names_known_ids_when_unknown() -> None:
    assert "trend" in load_template("balanced_trend")
    with pytest.raises(ConfigurationError, match="balanced_trend"):
        load_template("does_not_exist")
    with pytest.raises(ConfigurationError):
        load_template("../prompts/balanced_trend")


def test_templates_only_name_features_the_context_shows() -> None:
    import re

    from strategy_agent.decision.prompt_context import FEATURE_ORDER

    for template in list_templates():
        for word in re.findall(
            r"\b(?:ema|rsi|atr|bb|ret|macd|volume|realized)_[a-z0-9_]+", template.text
        ):
            assert word in FEATURE_ORDER, f"{template.template_id} names unknown feature {word}"


def test_the_library_keeps_no_table_of_its_own() -> None:
    """Saved versions belong to the history package (by strategy), not to a name here."""
    from strategy_agent.decision import prompt_library

    assert not hasattr(prompt_library, "PromptLibrary")
    source = Path(prompt_library.__file__).read_text(encoding="utf-8")
    assert "sqlite" not in source and "CREATE TABLE" not in source.upper()


def test_unified_diff_of_equal_texts_is_empty() -> None:
    assert unified_diff("a\nb", "a\nb") == ""
    assert unified_diff("a", "b").endswith("+b\n")
