"""Strategy prompts: the shipped templates (``strategy_agent/prompts/*.md``) and the user's own.

A template file starts with a ``# Title`` line; the rest is the prompt text.
User prompts are stored with versions in table ``prompts`` of the strategy
database; saving an unchanged text does not make a new version.
"""

from __future__ import annotations

import difflib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from strategy_agent.errors import ConfigurationError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "prompts"
TABLE = "prompts"
MAX_PROMPT_CHARS = 20_000
_BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PromptTemplate:
    """A shipped template: ``template_id`` is the file name without ``.md``."""

    template_id: str
    title: str
    text: str


@dataclass(frozen=True)
class SavedPrompt:
    """One stored version of a user prompt."""

    id: int
    name: str
    version: int
    text: str
    created_ts: int


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


class PromptLibrary:
    """User prompts with versions, in table ``prompts`` of the database at ``db_path``."""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            if TABLE not in db.table_names():
                db[TABLE].create(  # type: ignore[union-attr]
                    {"id": int, "name": str, "version": int, "text": str, "created_ts": int},
                    pk="id",
                    not_null={"name", "version", "text", "created_ts"},
                    if_not_exists=True,
                )
                db[TABLE].create_index(  # type: ignore[union-attr]
                    ["name", "version"], unique=True, if_not_exists=True
                )

    @contextmanager
    def _db(self) -> Iterator[sqlite_utils.Database]:
        with closing(sqlite3.connect(self.db_path, timeout=_BUSY_TIMEOUT_S)) as conn:
            yield sqlite_utils.Database(conn)
            conn.commit()

    def save(self, name: str, text: str, now_ms: int | None = None) -> SavedPrompt:
        """Store ``text`` as the next version of ``name`` (unchanged text: the latest version)."""
        name, text = name.strip(), text.strip()
        if not name:
            raise ConfigurationError("a saved prompt needs a name")
        if not text:
            raise ConfigurationError(f"prompt {name!r} is empty; write the strategy's instructions")
        if len(text) > MAX_PROMPT_CHARS:
            raise ConfigurationError(
                f"prompt {name!r} has {len(text)} characters; keep it under {MAX_PROMPT_CHARS}"
            )
        latest = self.latest(name)
        if latest is not None and latest.text == text:
            return latest
        version = latest.version + 1 if latest else 1
        created = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._db() as db:
            db.execute(
                f"insert into {TABLE} (name, version, text, created_ts) values (?, ?, ?, ?)",
                [name, version, text, created],
            )
        saved = self.get(name, version)
        assert saved is not None  # just inserted
        return saved

    def names(self) -> list[str]:
        """Names of the saved prompts, sorted."""
        with self._db() as db:
            return [r["name"] for r in db.query(f"select distinct name from {TABLE} order by name")]

    def versions(self, name: str) -> list[SavedPrompt]:
        """Every version of ``name``, oldest first."""
        return self._select("where name = ? order by version", [name])

    def latest(self, name: str) -> SavedPrompt | None:
        found = self._select("where name = ? order by version desc limit 1", [name])
        return found[0] if found else None

    def get(self, name: str, version: int) -> SavedPrompt | None:
        found = self._select("where name = ? and version = ?", [name, version])
        return found[0] if found else None

    def diff(self, name: str, version: int | None = None) -> str:
        """Unified diff of ``version`` (default: latest) against the version before it."""
        current = self.latest(name) if version is None else self.get(name, version)
        if current is None:
            raise ConfigurationError(f"no saved prompt {name!r} (version {version})")
        previous = self.get(name, current.version - 1)
        old_text = previous.text if previous else ""
        old_label = f"{name} v{previous.version}" if previous else f"{name} (none)"
        return unified_diff(old_text, current.text, old_label, f"{name} v{current.version}")

    def _select(self, where: str, params: list[object]) -> list[SavedPrompt]:
        with self._db() as db:
            rows = db.query(
                f"select id, name, version, text, created_ts from {TABLE} {where}", params
            )
            return [SavedPrompt(**row) for row in rows]
