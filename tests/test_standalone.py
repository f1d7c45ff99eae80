"""A fresh clone stands alone: no code, test or build file reads from outside the project.

Test data lives in ``tests/fixtures/`` (with its licence); a path into a sibling
folder (``../shared/...``) works on one machine and fails on every clone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SKIPPED_DIRS = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "node_modules",
    "screenshots",
}
_CHECKED_SUFFIXES = {".py", ".toml", ".cfg", ".ini", ".sh", ".txt", ".yml", ".yaml", ".json"}
# "../shared", a path segment "shared" built in code, or the absolute sibling folder.
_OUTSIDE = re.compile(r"\.\.[/\\]+shared\b|[\"']shared[\"']|/work/shared\b")


def _project_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        # data/ at the root holds the app's databases; the rest are tools' folders.
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS and here / d != ROOT / "data"]
        for name in files:
            path = here / name
            checked = path.suffix in _CHECKED_SUFFIXES or name == "Makefile"
            if checked and path != Path(__file__):
                yield path


def test_nothing_reads_from_outside_the_project() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _project_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert offenders == [], "copy what these need into the project:\n" + "\n".join(offenders)


def test_the_ccxt_fixtures_ship_with_their_licence() -> None:
    fixtures = ROOT / "tests" / "fixtures" / "ccxt_markets"
    assert {"okx.json", "bybit.json", "binance.json"} <= {p.name for p in fixtures.iterdir()}
    licence = (fixtures / "LICENSE-ccxt.txt").read_text()
    assert licence.startswith("MIT License") and "Igor Kroitor" in licence
