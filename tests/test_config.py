"""Config files: the examples load, mistakes are explained, keys are refused inline."""

from __future__ import annotations

from pathlib import Path

import pytest

from strategy_agent.config import load_request, parse_request
from strategy_agent.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "examples").glob("*.toml")))
def test_example_configs_load(name: str) -> None:
    request = load_request(ROOT / "examples" / name)
    assert request.trading.symbols


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_request(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[trading\nsymbols = 1")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_request(bad)


def test_validation_errors_name_the_field() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_request({"trading": {"symbols": [], "initial_capital": -5}})
    message = str(caught.value)
    assert "trading.symbols" in message and "trading.initial_capital" in message


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"trading\.colour"):
        parse_request({"trading": {"colour": "blue"}})


@pytest.mark.parametrize("section", ["llm", "exchange"])
def test_inline_keys_are_refused(section: str) -> None:
    with pytest.raises(ConfigurationError, match="api_key_env"):
        parse_request({section: {"api_key": "sk-123"}})
