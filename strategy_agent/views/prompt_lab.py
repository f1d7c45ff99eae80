"""Queries and actions of the Prompt lab: the strategy's prompt, templates, versions, one cycle.

Saved prompts live in the prompt library (table ``prompts`` of the same
database) under a name; saving also makes the text the strategy's
``custom_prompt``, so the next cycle uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strategy_agent.decision.prompt_library import (
    PromptLibrary,
    SavedPrompt,
    list_templates,
    load_template,
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
    source: str  # "custom", "template <id>" or "none"
    uses_prompt: bool  # False for built-in rules: they read the market, not the prompt
    model: str


def template_choices() -> dict[str, str]:
    """Template id -> title, for pickers."""
    return {t.template_id: t.title for t in list_templates()}


def template_text(template_id: str) -> str:
    return load_template(template_id)


def prompt_state(store: SqliteStore, strategy_id: str) -> PromptState:
    """The strategy's effective prompt text (custom, else its template, else empty)."""
    request = store.get_strategy(strategy_id).request
    trading = request.trading
    if trading.custom_prompt and trading.custom_prompt.strip():
        text, source = trading.custom_prompt.strip(), "custom"
    elif trading.template_id:
        text, source = load_template(trading.template_id), f"template {trading.template_id}"
    else:
        text, source = "", "none"
    return PromptState(
        strategy_id=strategy_id,
        strategy_name=trading.strategy_name,
        text=text,
        source=source,
        uses_prompt=not request.llm.is_builtin,
        model=f"{request.llm.provider}/{request.llm.model_id}",
    )


def save_prompt(
    store: SqliteStore, strategy_id: str, name: str, text: str, now_ms: int | None = None
) -> SavedPrompt:
    """Save ``text`` as the next version of ``name`` and make it the strategy's prompt."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    saved = PromptLibrary(Path(store.path)).save(name, text, now)
    request = store.get_strategy(strategy_id).request
    trading = request.trading.model_copy(update={"custom_prompt": saved.text, "template_id": None})
    store.update_request(strategy_id, request.model_copy(update={"trading": trading}), now)
    return saved


def prompt_versions(store: SqliteStore, name: str) -> list[SavedPrompt]:
    """Saved versions of ``name``, newest first."""
    return list(reversed(PromptLibrary(Path(store.path)).versions(name)))


def version_diff(store: SqliteStore, name: str, version: int) -> str:
    """Unified diff of ``version`` against the one before it."""
    return PromptLibrary(Path(store.path)).diff(name, version)


def run_cycle(runner: StrategyRunner, strategy_id: str, *, dry_run: bool) -> CycleDetail:
    """One cycle now: a dry run composes without trading; otherwise a real step."""
    if dry_run:
        context, result = runner.preview(strategy_id)
        return detail_from_compose(context, result, dry_run=True)
    return detail_from_report(runner.step_once(strategy_id))
