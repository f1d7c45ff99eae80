"""Queries and actions of the Prompt lab: the strategy's prompt, templates, versions, one cycle.

Saved versions belong to the strategy (by id, in the history package's
``prompt_versions``), not to its name. Saving records a version, then makes
the text the strategy's ``custom_prompt``: a running strategy picks it up
before its next cycle, and that cycle's record names the version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strategy_agent.decision.prompt_choice import prompt_choice
from strategy_agent.decision.prompt_library import list_templates, load_template, unified_diff
from strategy_agent.errors import ConfigurationError
from strategy_agent.factory import prompt_version_of
from strategy_agent.trading_history.prompt_versions import (
    PromptVersion,
    list_prompt_versions,
    save_prompt_version,
)
from strategy_agent.views.cycle_detail import CycleDetail, detail_from_compose, detail_from_report

if TYPE_CHECKING:
    from strategy_agent.runner import StrategyRunner
    from strategy_agent.trading_history.store import SqliteStore


@dataclass(frozen=True)
class PromptState:
    """The prompt a strategy runs with and where it comes from."""

    strategy_id: str
    strategy_name: str
    text: str
    source: str  # "custom", "template <id>", "default template <id>" or "none"
    uses_prompt: bool  # False for built-in rules: they read the market, not the prompt
    model: str
    version: int | None = None  # the saved version equal to ``text``; None: never saved


def template_choices() -> dict[str, str]:
    """Template id -> title, for pickers."""
    return {t.template_id: t.title for t in list_templates()}


def template_text(template_id: str) -> str:
    return load_template(template_id)


def prompt_state(store: SqliteStore, strategy_id: str) -> PromptState:
    """The strategy's effective prompt text (custom, else its template or an LLM's default)."""
    request = store.get_strategy(strategy_id).request
    trading = request.trading
    choice = prompt_choice(trading, uses_prompt=not request.llm.is_builtin)
    text, source = choice.text, choice.source
    return PromptState(
        strategy_id=strategy_id,
        strategy_name=trading.strategy_name,
        text=text,
        source=source,
        uses_prompt=not request.llm.is_builtin,
        model=f"{request.llm.provider}/{request.llm.model_id}",
        version=prompt_version_of(store, strategy_id, text) if text else None,
    )


def save_prompt(
    store: SqliteStore, strategy_id: str, text: str, now_ms: int | None = None
) -> PromptVersion:
    """Save ``text`` as the strategy's next prompt version and make it the prompt in use.

    The version is written first, so a running strategy that sees the new text
    also finds its version. Unchanged text: the latest version, no new one.
    """
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    saved = save_prompt_version(store, strategy_id, text, now)
    request = store.get_strategy(strategy_id).request
    trading = request.trading.model_copy(update={"custom_prompt": saved.text, "template_id": None})
    store.update_request(strategy_id, request.model_copy(update={"trading": trading}), now)
    return saved


def prompt_versions(store: SqliteStore, strategy_id: str) -> list[PromptVersion]:
    """The strategy's saved prompt versions, newest first."""
    return list_prompt_versions(store, strategy_id)


def version_diff(store: SqliteStore, strategy_id: str, version: int) -> str:
    """Unified diff of ``version`` against the one before it (empty text before v1)."""
    by_number = {v.version: v for v in list_prompt_versions(store, strategy_id)}
    current = by_number.get(version)
    if current is None:
        raise ConfigurationError(f"this strategy has no saved prompt version {version}")
    previous = by_number.get(version - 1)
    return unified_diff(
        previous.text if previous else "",
        current.text,
        f"v{previous.version}" if previous else "(nothing saved)",
        f"v{current.version}",
    )


def run_cycle(runner: StrategyRunner, strategy_id: str, *, dry_run: bool) -> CycleDetail:
    """One cycle now: a dry run composes without trading; otherwise a real step."""
    if dry_run:
        context, result = runner.preview(strategy_id)
        return detail_from_compose(context, result, dry_run=True)
    return detail_from_report(runner.step_once(strategy_id))
