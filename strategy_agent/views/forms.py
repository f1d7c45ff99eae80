"""The "New strategy" form as data: flat field values in, a ``UserRequest`` or errors out.

The page keeps one widget per field, keyed by the dotted names below
(``"trading.symbols"``); ``build_request`` validates them all at once with the
same pydantic models the engine uses and maps every error back to its field,
so the page can show it next to the widget. Nothing is saved half-valid: the
page saves only when ``FormOutcome.request`` is set.

Units on the form are the ones people think in: the per-instrument cap is a
percentage of equity (40 -> ``max_position_pct=0.4``); exposure caps are
multiples of equity (1.0 = 1x).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr, ValidationError

from strategy_agent.factory import unsupported
from strategy_agent.models import UserRequest

LIVE_CONFIRMATION = "LIVE"
CUSTOM_PROMPT = "custom"

PROVIDERS: dict[str, str] = {
    "builtin": "Built-in rule (no key, no network)",
    "openai": "OpenAI (or any OpenAI-compatible server via API base)",
    "anthropic": "Anthropic",
    "gemini": "Google Gemini",
    "deepseek": "DeepSeek",
    "openrouter": "OpenRouter",
    "ollama": "Ollama (local)",
}
TRADING_MODES: dict[str, str] = {
    "paper": "Paper (simulated fills)",
    "testnet": "Testnet (exchange sandbox)",
    "live": "Live (real money)",
}
MARKET_TYPES: dict[str, str] = {
    "spot": "Spot (long only)",
    "margin": "Margin (long and short)",
    "swap": "Perpetual swap (long and short)",
}

# Fields whose form unit differs from the model's: form value * factor = model value.
_SCALED = {"trading.max_position_pct": 0.01}
_OPTIONAL_TEXT = (
    "llm.api_key_env",
    "llm.api_base",
    "exchange.api_key_env",
    "exchange.secret_key_env",
)


@dataclass
class FormOutcome:
    """Either a valid request (plus a key typed for this session) or errors by field."""

    request: UserRequest | None = None
    session_key: SecretStr | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.request is not None and not self.errors


def default_values() -> dict[str, Any]:
    """Form values of the embedded default (simulated market, paper, built-in rule)."""
    return values_from_request(UserRequest())


def values_from_request(request: UserRequest) -> dict[str, Any]:
    """Form values that reproduce ``request`` (for defaults and "duplicate")."""
    values: dict[str, Any] = {}
    for section in ("llm", "exchange", "trading"):
        dumped = getattr(request, section).model_dump(mode="json")
        for name, value in dumped.items():
            values[f"{section}.{name}"] = value
    for key, factor in _SCALED.items():
        values[key] = round(values[key] / factor, 6)
    values["trading.prompt_choice"] = request.trading.template_id or CUSTOM_PROMPT
    values["llm.session_key"] = ""
    values["exchange.confirm_live"] = ""
    return values


def build_request(values: dict[str, Any]) -> FormOutcome:
    """Validate every field at once; a request only when all of them are valid."""
    errors = _form_level_errors(values)
    raw = _raw_request(values)
    try:
        request = UserRequest.model_validate(raw)
    except ValidationError as error:
        errors.update(_errors_by_field(error, errors))
        errors.update(_cross_field_errors(raw, errors))
        return FormOutcome(errors=errors)
    problem = unsupported(request)
    if problem is not None:
        field, message = problem
        errors.setdefault(field, message)
    if errors:
        return FormOutcome(errors=errors)
    typed = str(values.get("llm.session_key") or "").strip()
    return FormOutcome(request=request, session_key=SecretStr(typed) if typed else None)


def _raw_request(values: dict[str, Any]) -> dict[str, Any]:
    """Nested dict for ``UserRequest`` from the flat form values (blanks become None)."""
    raw: dict[str, dict[str, Any]] = {"llm": {}, "exchange": {}, "trading": {}}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if section not in raw or name in {"session_key", "confirm_live", "prompt_choice"}:
            continue
        if name in {"api_key", "secret_key"}:
            continue  # typed keys never enter the request
        if key in _OPTIONAL_TEXT and isinstance(value, str):
            value = value.strip() or None
        if key in _SCALED and isinstance(value, int | float):
            value = value * _SCALED[key]
        raw[section][name] = value
    trading = raw["trading"]
    choice = values.get("trading.prompt_choice", CUSTOM_PROMPT)
    trading["template_id"] = None if choice == CUSTOM_PROMPT else choice
    custom = str(trading.get("custom_prompt") or "").strip()
    trading["custom_prompt"] = custom or None
    if isinstance(trading.get("symbols"), str):
        trading["symbols"] = [s for s in trading["symbols"].replace("\n", ",").split(",")]
    return raw


def _errors_by_field(error: ValidationError, known: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in error.errors():
        key = _field_for(item["loc"], str(item["msg"]))
        if key not in known:
            found.setdefault(key, _message(str(item["msg"])))
    return found


def _cross_field_errors(raw: dict[str, Any], known: dict[str, str]) -> dict[str, str]:
    """Rules across fields (shorting on spot...) that pydantic skips while a field is invalid.

    Validates again with every invalid field left at its default, so all the
    problems show at once instead of one round at a time.
    """
    relaxed = {section: dict(fields) for section, fields in raw.items()}
    for key in known:
        section, _, name = key.partition(".")
        relaxed.get(section, {}).pop(name, None)
    try:
        UserRequest.model_validate(relaxed)
    except ValidationError as error:
        return _errors_by_field(error, known)
    return {}


def _form_level_errors(values: dict[str, Any]) -> dict[str, str]:
    """Rules of the form itself: live confirmation and "a prompt must exist"."""
    errors: dict[str, str] = {}
    if values.get("exchange.trading_mode") == "live":
        typed = str(values.get("exchange.confirm_live") or "").strip()
        if typed != LIVE_CONFIRMATION:
            errors["exchange.confirm_live"] = (
                f"live mode trades real money: type {LIVE_CONFIRMATION} to confirm"
            )
    choice = values.get("trading.prompt_choice", CUSTOM_PROMPT)
    custom = str(values.get("trading.custom_prompt") or "").strip()
    is_llm = values.get("llm.provider", "builtin") != "builtin"
    if is_llm and choice == CUSTOM_PROMPT and not custom:
        errors["trading.custom_prompt"] = (
            "an LLM needs a strategy prompt: write one here or pick a template"
        )
    return errors


def _field_for(loc: tuple[Any, ...], message: str) -> str:
    """The form field a pydantic error belongs to (model-level errors by keyword)."""
    parts = [str(part) for part in loc if not isinstance(part, int)]
    if len(parts) >= 2:
        return f"{parts[0]}.{parts[1]}"
    for keyword, key in (
        ("allow_short", "trading.allow_short"),
        ("max_leverage", "trading.max_leverage"),
    ):
        if keyword in message:
            return key
    return ".".join(parts) or "form"


def _message(raw: str) -> str:
    return raw.removeprefix("Value error, ")
