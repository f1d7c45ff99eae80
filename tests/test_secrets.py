from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import ModelConfig
from strategy_agent.secrets import default_key_env, needs_key, redact, resolve_api_key

OPENAI = ModelConfig(provider="openai", model_id="gpt-4o-mini")


@pytest.fixture
def no_secrets(tmp_path: Path) -> Path:
    return tmp_path / "missing.toml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)


def _secrets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_session_key_wins_over_environment_and_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-1234")
    path = _secrets(tmp_path, 'OPENAI_API_KEY = "file-key-1234"\n')
    key = resolve_api_key(OPENAI, session_key=" session-key-1234 ", secrets_path=path)
    assert isinstance(key, SecretStr) and key.get_secret_value() == "session-key-1234"


def test_in_process_config_key_comes_after_the_session_key(no_secrets: Path) -> None:
    config = OPENAI.model_copy(update={"api_key": SecretStr("config-key-1234")})
    assert resolve_api_key(config, secrets_path=no_secrets).get_secret_value() == "config-key-1234"  # type: ignore[union-attr]
    assert resolve_api_key(config, "typed-1234", no_secrets).get_secret_value() == "typed-1234"  # type: ignore[union-attr]


def test_environment_variable_named_by_the_config(
    monkeypatch: pytest.MonkeyPatch, no_secrets: Path
) -> None:
    monkeypatch.setenv("MY_KEY", "env-key-1234")
    monkeypatch.setenv("OPENAI_API_KEY", "default-env-1234")
    config = OPENAI.model_copy(update={"api_key_env": "MY_KEY"})
    assert resolve_api_key(config, secrets_path=no_secrets).get_secret_value() == "env-key-1234"  # type: ignore[union-attr]
    assert resolve_api_key(OPENAI, secrets_path=no_secrets).get_secret_value() == "default-env-1234"  # type: ignore[union-attr]


def test_empty_session_key_and_blank_env_fall_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "   ")
    path = _secrets(tmp_path, '[llm]\nopenai_api_key = "file-key-1234"\n')
    assert resolve_api_key(OPENAI, "", path).get_secret_value() == "file-key-1234"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        'OPENAI_API_KEY = "file-key-1234"\n',
        '[llm]\nOPENAI_API_KEY = "file-key-1234"\n',
        '[llm]\nMY_KEY = "file-key-1234"\n',
        'MY_KEY = "file-key-1234"\n[other]\nx = 1\n',
    ],
)
def test_secrets_file_top_level_or_llm_section(tmp_path: Path, text: str) -> None:
    config = OPENAI.model_copy(update={"api_key_env": "MY_KEY"})
    key = resolve_api_key(config, secrets_path=_secrets(tmp_path, text))
    assert key is not None and key.get_secret_value() == "file-key-1234"


def test_missing_key_names_the_variable_to_set(no_secrets: Path) -> None:
    config = ModelConfig(provider="anthropic", model_id="claude-3-5-haiku-latest")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY") as caught:
        resolve_api_key(config, secrets_path=no_secrets)
    assert str(no_secrets) in str(caught.value)


def test_broken_secrets_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="TOML"):
        resolve_api_key(OPENAI, secrets_path=_secrets(tmp_path, "not = [toml"))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ModelConfig(), False),
        (ModelConfig(provider="ollama", model_id="llama3"), False),
        (ModelConfig(provider="openai", model_id="m", api_base="http://localhost:8000/v1"), False),
        (ModelConfig(provider="openai", model_id="m", api_base="http://127.0.0.1:9/v1"), False),
        (ModelConfig(provider="openai", model_id="m", api_base="https://api.example.com/v1"), True),
        (OPENAI, True),
    ],
)
def test_who_needs_a_key(config: ModelConfig, expected: bool, no_secrets: Path) -> None:
    assert needs_key(config) is expected
    if not expected:
        assert resolve_api_key(config, secrets_path=no_secrets) is None


def test_default_key_env() -> None:
    assert default_key_env("openai") == "OPENAI_API_KEY"
    assert default_key_env("together-ai") == "TOGETHER_AI_API_KEY"


def test_redact_replaces_every_secret_and_ignores_short_ones() -> None:
    text = "key sk-abcdef and again sk-abcdef, pass xy"
    assert redact(text, ["sk-abcdef", None, "xy"]) == "key *** and again ***, pass xy"
    assert redact(text, [SecretStr("sk-abcdef")]) == "key *** and again ***, pass xy"
