from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.decision.prompt_library import (
    PromptLibrary,
    list_templates,
    load_template,
    unified_diff,
)
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


def test_save_makes_versions_and_skips_unchanged_text(db_path: Path) -> None:
    library = PromptLibrary(db_path)
    first = library.save("mine", "Buy low.", now_ms=1)
    same = library.save("mine", "  Buy low.  ", now_ms=2)
    second = library.save("mine", "Buy low.\nSell high.", now_ms=3)
    assert (first.version, same.version, second.version) == (1, 1, 2)
    assert same == first
    assert [p.text for p in library.versions("mine")] == ["Buy low.", "Buy low.\nSell high."]
    assert library.latest("mine") == second
    assert library.get("mine", 1) == first
    assert library.get("mine", 9) is None
    library.save("another", "Hold.", now_ms=4)
    assert library.names() == ["another", "mine"]
    assert PromptLibrary(db_path).latest("mine") == second  # stored, not in memory


def test_diff_against_the_previous_version(db_path: Path) -> None:
    library = PromptLibrary(db_path)
    library.save("mine", "Buy low.", now_ms=1)
    library.save("mine", "Buy low.\nSell high.", now_ms=2)
    diff = library.diff("mine")
    assert "--- mine v1" in diff and "+++ mine v2" in diff
    assert "+Sell high." in diff
    first = library.diff("mine", 1)
    assert "mine (none)" in first and "+Buy low." in first
    with pytest.raises(ConfigurationError):
        library.diff("nobody")


def test_save_refuses_empty_or_huge_prompts(db_path: Path) -> None:
    library = PromptLibrary(db_path)
    with pytest.raises(ConfigurationError, match="empty"):
        library.save("mine", "   ")
    with pytest.raises(ConfigurationError, match="name"):
        library.save(" ", "text")
    with pytest.raises(ConfigurationError, match="under"):
        library.save("mine", "x" * 30_000)


def test_unified_diff_of_equal_texts_is_empty() -> None:
    assert unified_diff("a\nb", "a\nb") == ""
    assert unified_diff("a", "b").endswith("+b\n")
