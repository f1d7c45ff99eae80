"""Find an LLM API key (never stored, never logged) and scrub keys out of text.

A key comes, in this order, from: the key typed in the UI for this session,
``ModelConfig.api_key`` (set in-process), the environment variable the config
names (``api_key_env``, else the provider's usual one such as ``OPENAI_API_KEY``),
then ``.streamlit/secrets.toml`` (top-level ``OPENAI_API_KEY = "..."`` or the
same name under ``[llm]``). Local servers (Ollama, an ``api_base`` on localhost)
may have no key at all.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import ModelConfig

REDACTED = "***"
_MIN_SECRET_LEN = 4
_KEYLESS_PROVIDERS = frozenset({"builtin", "ollama", "ollama_chat", "lm_studio", "llamafile"})
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def default_key_env(provider: str) -> str:
    """The environment variable a provider's key usually lives in (``OPENAI_API_KEY``)."""
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in provider.strip().upper())
    return f"{cleaned}_API_KEY"


def key_env_name(config: ModelConfig) -> str:
    """The environment variable this config reads its key from."""
    return config.api_key_env or default_key_env(config.provider)


def needs_key(config: ModelConfig) -> bool:
    """False for built-in rules, Ollama-like local providers and an ``api_base`` on localhost."""
    if config.provider.lower() in _KEYLESS_PROVIDERS:
        return False
    if config.api_base:
        host = urlparse(config.api_base).hostname or ""
        if host.lower() in _LOCAL_HOSTS or host.startswith("127."):
            return False
    return True


def resolve_api_key(
    config: ModelConfig,
    session_key: str | None = None,
    secrets_path: str | Path = ".streamlit/secrets.toml",
) -> SecretStr | None:
    """The key to use for ``config``, or ``None`` when it needs none.

    Raises ``ConfigurationError`` naming the environment variable to set when the
    provider needs a key and none of the sources has one.
    """
    env_name = key_env_name(config)
    found = (
        _clean(session_key)
        or (_clean(config.api_key.get_secret_value()) if config.api_key else None)
        or _clean(os.environ.get(env_name))
        or _from_secrets_file(Path(secrets_path), env_name, config.provider)
    )
    if found:
        return SecretStr(found)
    if config.is_builtin or not needs_key(config):
        return None
    raise ConfigurationError(
        f"no API key for {config.provider}/{config.model_id}: set the environment variable "
        f'{env_name}, add {env_name} = "..." under [llm] in {secrets_path}, or type the key '
        f"in the app for this session"
    )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _from_secrets_file(path: Path, env_name: str, provider: str) -> str | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(
            f"{path} could not be read ({type(error).__name__}); fix its TOML syntax"
        ) from None
    names = {env_name.upper(), default_key_env(provider)}
    section = data.get("llm")
    for table in (section if isinstance(section, Mapping) else {}, data):
        value = _lookup(table, names)
        if value:
            return value
    return None


def _lookup(table: Mapping[str, Any], names: set[str]) -> str | None:
    for name, value in table.items():
        if str(name).upper() in names and isinstance(value, str):
            cleaned = _clean(value)
            if cleaned:
                return cleaned
    return None


def redact(text: str, secrets: Iterable[str | SecretStr | None]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``.

    Secrets shorter than 4 characters are ignored (they would scrub ordinary text).
    """
    for secret in secrets:
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if raw and len(raw) >= _MIN_SECRET_LEN:
            text = text.replace(raw, REDACTED)
    return text
