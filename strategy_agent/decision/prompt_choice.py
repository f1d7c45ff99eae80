"""Which strategy prompt a strategy runs with: one rule for the engine, the pages and the form.

Its own text (``custom_prompt``) wins; else its template (``template_id``);
else an LLM strategy runs with the named default template
(``DEFAULT_TEMPLATE_ID``), never with an empty or made-up prompt. A built-in
rule reads the market, not a prompt, so it gets no default. The stored
request is never rewritten: the default is resolved when the prompt is used
and shown as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategy_agent.decision.prompt_library import load_template
from strategy_agent.models import TradingConfig

DEFAULT_TEMPLATE_ID = "balanced_trend"


@dataclass(frozen=True)
class PromptChoice:
    """The prompt in use: its text ("" when none) and where it comes from.

    ``source`` is ``"custom"``, ``"template <id>"``, ``"default template <id>"``
    or ``"none"``; ``template_id`` is the template whose text is used, if any.
    """

    text: str
    source: str
    template_id: str | None = None

    @property
    def is_default(self) -> bool:
        return self.source.startswith("default template")


def template_in_use(trading: TradingConfig, uses_prompt: bool) -> str | None:
    """The template whose text is the prompt (``None``: the custom prompt, or no prompt).

    ``uses_prompt`` is False for built-in rules (no default template for them).
    """
    if trading.custom_prompt and trading.custom_prompt.strip():
        return None
    if trading.template_id:
        return trading.template_id
    return DEFAULT_TEMPLATE_ID if uses_prompt else None


def prompt_choice(trading: TradingConfig, uses_prompt: bool) -> PromptChoice:
    """The prompt a strategy with ``trading`` settings runs with (see the module doc)."""
    if trading.custom_prompt and trading.custom_prompt.strip():
        return PromptChoice(trading.custom_prompt.strip(), "custom")
    template_id = template_in_use(trading, uses_prompt)
    if template_id is None:
        return PromptChoice("", "none")
    prefix = "template" if trading.template_id else "default template"
    return PromptChoice(load_template(template_id), f"{prefix} {template_id}", template_id)
