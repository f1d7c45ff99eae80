"""Strategy prompt templates (``strategy_agent/prompts/*.md``) and the diff of two prompts.

A template file starts with a ``# Title`` line; the rest is the prompt text.
A strategy's own prompt versions are stored by the history package
(``strategy_agent.trading_history.prompt_versions``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from strategy_agent.errors import ConfigurationError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "prompts"


@dataclass(frozen=True)
class PromptTemplate:
    """A shipped template: ``template_id`` is the file name without ``.md``."""

    template_id: str
    title: str
    text: str


def list_templates(directory: Path = TEMPLATES_DIR) -> list[PromptTemplate]:
    """Every template in ``directory``, sorted by id."""
    return [_read_template(path) for path in sorted(directory.glob("*.md"))]


def load_template(template_id: str, directory: Path = TEMPLATES_DIR) -> str:
    """The prompt text of a template; ``ConfigurationError`` lists the ids that exist."""
    path = directory / f"{template_id}.md"
    if not template_id or "/" in template_id or "\\" in template_id or not path.is_file():
        known = ", ".join(t.template_id for t in list_templates(directory)) or "(none)"
        raise ConfigurationError(f"unknown prompt template {template_id!r}; use one of: {known}")
    return _read_template(path).text


def _read_template(path: Path) -> PromptTemplate:
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    title = path.stem.replace("_", " ").capitalize()
    if lines and lines[0].startswith("# "):
        title = lines[0][2:].strip()
        lines = lines[1:]
    return PromptTemplate(template_id=path.stem, title=title, text="\n".join(lines).strip())


def unified_diff(old: str, new: str, old_label: str = "old", new_label: str = "new") -> str:
    """A unified diff of two prompt texts (empty when they are equal)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
