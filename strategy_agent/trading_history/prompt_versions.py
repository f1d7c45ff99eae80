"""Saved versions of a strategy's prompt, owned by the strategy (by id, not by a free-text name).

Saving an unchanged text makes no new version. Each compose record names the
version it used, so a trader sees where a change took effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategy_agent.errors import ConfigurationError
from strategy_agent.trading_history.store import SqliteStore

MAX_PROMPT_CHARS = 20_000

_COLUMNS = "id, strategy_id, version, text, created_ts"


@dataclass(frozen=True)
class PromptVersion:
    """One stored version of a strategy's prompt; ``created_ts`` in epoch ms UTC."""

    id: int
    strategy_id: str
    version: int
    text: str
    created_ts: int


def save_prompt_version(
    store: SqliteStore, strategy_id: str, text: str, now_ms: int
) -> PromptVersion:
    """Store ``text`` (stripped) as the strategy's next version; unchanged: the latest one.

    Raises ``ConfigurationError`` for an empty or too long text or an unknown strategy.
    """
    text = text.strip()
    if not text:
        raise ConfigurationError("the prompt is empty: write the strategy's instructions")
    if len(text) > MAX_PROMPT_CHARS:
        raise ConfigurationError(
            f"the prompt has {len(text):,} characters; keep it under {MAX_PROMPT_CHARS:,}"
        )
    store.get_strategy(strategy_id)  # a clear error for an unknown id
    with store.write():
        latest = _select(store, "WHERE strategy_id = ? ORDER BY version DESC LIMIT 1", strategy_id)
        if latest and latest[0].text == text:
            return latest[0]
        version = latest[0].version + 1 if latest else 1
        store.db.execute(
            "INSERT INTO prompt_versions (strategy_id, version, text, created_ts) "
            "VALUES (?, ?, ?, ?)",
            [strategy_id, version, text, now_ms],
        )
    saved = _select(store, "WHERE strategy_id = ? AND version = ?", strategy_id, version)
    return saved[0]


def list_prompt_versions(store: SqliteStore, strategy_id: str) -> list[PromptVersion]:
    """Every saved version of the strategy's prompt, newest first."""
    return _select(store, "WHERE strategy_id = ? ORDER BY version DESC", strategy_id)


def latest_prompt_version(store: SqliteStore, strategy_id: str) -> PromptVersion | None:
    """The newest saved version, or ``None`` when the strategy has none."""
    found = _select(store, "WHERE strategy_id = ? ORDER BY version DESC LIMIT 1", strategy_id)
    return found[0] if found else None


def _select(store: SqliteStore, where: str, *params: object) -> list[PromptVersion]:
    rows = store.rows(f"SELECT {_COLUMNS} FROM prompt_versions {where}", list(params))
    return [PromptVersion(**row) for row in rows]
