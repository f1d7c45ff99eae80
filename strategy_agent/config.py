"""Load a strategy configuration (TOML mirroring ``UserRequest``) with readable errors.

```toml
[llm]        # provider "builtin" needs no key; for an LLM: api_key_env = "OPENAI_API_KEY"
[exchange]   # exchange_id "simulated", trading_mode "paper", market_type, fee_bps, slippage_bps
[trading]    # strategy_name, symbols, initial_capital, interval, limits, custom_prompt...
```

Keys are never read from the file: an ``api_key`` entry is refused with a
message that says to use ``api_key_env`` instead.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from strategy_agent.errors import ConfigurationError
from strategy_agent.models import UserRequest

_INLINE_SECRETS = ("api_key", "secret_key")


def load_request(path: str | Path) -> UserRequest:
    """Parse and validate a TOML config file into a ``UserRequest``."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"config file not found: {file}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{file} is not valid TOML: {error}") from None
    return parse_request(raw, source=str(file))


def parse_request(raw: dict[str, Any], source: str = "config") -> UserRequest:
    """Validate a config mapping; inline secrets are refused."""
    for section in ("llm", "exchange"):
        for key in _INLINE_SECRETS:
            if isinstance(raw.get(section), dict) and key in raw[section]:
                raise ConfigurationError(
                    f"{source}: [{section}] {key} must not be written in a file; "
                    f"set {key}_env to the NAME of an environment variable that holds it"
                )
    try:
        return UserRequest.model_validate(raw)
    except ValidationError as error:
        raise ConfigurationError(
            f"{source} is invalid:\n{format_validation_error(error)}"
        ) from None


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: ``trading.symbols: must list at least one symbol``."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top)"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)
