"""The "New strategy" form as data: flat field values in, a ``UserRequest`` or errors out.

The page keeps one widget per field, keyed by the dotted names below
(``"trading.symbols"``); ``build_request`` validates them all at once with the
same pydantic models the engine uses and maps every error back to its field,
in words a trader uses ("Initial capital must be more than 0 USDT (you typed
-5,000)."), so the page can show it next to the widget. Nothing is saved
half-valid or different from what was typed: the page saves only when
``FormOutcome.request`` is set, and its widgets have no bounds of their own
(a bounded ``st.number_input`` silently keeps its previous value when the
typed one is out of range). Text is never trimmed into something else: a name,
model id, exchange or symbol of spaces is refused like an empty one, and spaces
around a value are pointed out (a blank optional field is simply left out).

Symbols are refused at creation when they are not tradable: on the simulated
market against its list, on a real exchange by their notation and, when the
exchange's markets are loaded (``markets``), against them (with the closest
symbols as a suggestion).

Units on the form are the ones people think in: the per-instrument cap is a
percentage of equity (40 -> ``max_position_pct=0.4``); exposure caps are
multiples of equity (1.0 = 1x).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr, ValidationError

from strategy_agent.decision.prompt_choice import template_in_use
from strategy_agent.factory import SIMULATED, unsupported
from strategy_agent.models import UserRequest
from strategy_agent.wiring import symbols_problem

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
    "exchange.api_url",
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
    uses_prompt = not request.llm.is_builtin  # an LLM without a prompt runs the default template
    values["trading.prompt_choice"] = template_in_use(request.trading, uses_prompt) or CUSTOM_PROMPT
    values["llm.session_key"] = ""
    values["exchange.confirm_live"] = ""
    return values


def build_request(
    values: dict[str, Any], markets: Mapping[str, Mapping[str, Any]] | None = None
) -> FormOutcome:
    """Validate every field at once; a request only when all of them are valid.

    ``markets``: the chosen real exchange's markets when they are loaded (ccxt
    ``load_markets``); the symbols are then checked against them too.
    """
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
    elif markets is not None and request.exchange.exchange_id != SIMULATED:
        listed = symbols_problem(request, markets)
        if listed is not None:
            errors.setdefault("trading.symbols", listed)
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
            found.setdefault(key, _message(key, item))
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


# Text the engine would trim or accept as it is, said here instead: a value of spaces is no
# value, and spaces around one are pointed out, never removed behind the trader's back.
_REQUIRED_TEXT = {
    "trading.strategy_name": ("The strategy name", "Give the strategy a name."),
    "llm.model_id": ("Model id", "Model id cannot be empty."),
    "exchange.exchange_id": ("Exchange", "Exchange cannot be empty."),
}
_OPTIONAL_LABELS = {
    "llm.api_key_env": "Key environment variable",
    "llm.api_base": "API base",
    "exchange.api_key_env": "API key environment variable",
    "exchange.secret_key_env": "Secret environment variable",
    "exchange.api_url": "API URL",
}


def _spaces_errors(values: dict[str, Any]) -> dict[str, str]:
    """Names, ids and symbols of spaces, or with spaces around them (a blank optional
    field is simply left out)."""
    errors: dict[str, str] = {}
    around = "{} starts or ends with a space: remove it."
    for key, (label, empty) in _REQUIRED_TEXT.items():
        typed = values.get(key)
        if isinstance(typed, str) and typed and not typed.strip():
            errors[key] = empty
        elif isinstance(typed, str) and typed != typed.strip():
            errors[key] = around.format(label)
    for key, label in _OPTIONAL_LABELS.items():
        typed = values.get(key)
        if isinstance(typed, str) and typed.strip() and typed != typed.strip():
            errors[key] = around.format(label)
    symbols = values.get("trading.symbols")
    for symbol in symbols if isinstance(symbols, list) else []:
        text = str(symbol)
        if not text.strip():
            errors["trading.symbols"] = "One symbol is blank: remove it."
            break
        if text != text.strip():
            errors["trading.symbols"] = (
                f"Symbol {text!r} starts or ends with a space: remove it and pick {text.strip()!r}."
            )
            break
    return errors


def _form_level_errors(values: dict[str, Any]) -> dict[str, str]:
    """Rules of the form itself: spaces, live confirmation and "a prompt must exist"."""
    errors = _spaces_errors(values)
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


# How the page names each field and the unit it shows it in (for messages).
_FIELDS: dict[str, tuple[str, str]] = {
    "llm.model_id": ("Model id", ""),
    "llm.temperature": ("Temperature", ""),
    "exchange.fee_bps": ("Fee", " bps"),
    "exchange.slippage_bps": ("Slippage", " bps"),
    "trading.strategy_name": ("Strategy name", ""),
    "trading.initial_capital": ("Initial capital", " USDT"),
    "trading.interval": ("Candle interval", ""),
    "trading.lookback": ("Lookback", " candles"),
    "trading.max_leverage": ("Max leverage", "x"),
    "trading.max_positions": ("Max open positions", ""),
    "trading.max_position_pct": ("Per-instrument cap", " % of equity"),
    "trading.max_gross_exposure": ("Gross exposure cap", "x equity"),
    "trading.max_net_exposure": ("Net exposure cap", "x equity"),
    "trading.cooldown_bars": ("Cool-down", " bars"),
    "trading.min_confidence": ("Min confidence", ""),
}
# Rules the models state in engine terms, said the way the form asks for them.
_RULES: tuple[tuple[str, str], ...] = (
    ("at least one non-empty symbol", "Pick at least one symbol to trade."),
    ("symbols must not repeat", "List each symbol only once."),
    (
        "allow_short needs market_type",
        "Spot is long only: turn shorting off, or pick market type margin or swap.",
    ),
    (
        "max_leverage must be 1 on spot",
        "Spot trades without leverage: set Max leverage to 1, or pick market type margin or swap.",
    ),
)
_BOUNDS = {
    "greater_than": ("gt", "must be more than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "can be at most"),
}


def _message(key: str, item: Any) -> str:
    """One validation error of ``key`` in the form's words, with what was typed."""
    kind, raw = str(item["type"]), str(item["msg"]).removeprefix("Value error, ")
    label, unit = _FIELDS.get(key, (key.rpartition(".")[2].replace("_", " ").capitalize(), ""))
    ctx = item.get("ctx") or {}
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        typed = _form_amount(key, item.get("input"))
        limit = _form_amount(key, ctx.get(name))
        return f"{label} {words} {limit}{unit} (you typed {typed}{unit})."
    if key == "trading.strategy_name" and kind == "string_too_short":
        return "Give the strategy a name."
    if kind == "string_too_short":
        return f"{label} cannot be empty."
    if kind == "string_too_long":
        return f"{label} is too long: at most {ctx.get('max_length')} characters."
    if kind.startswith(("float_", "int_", "finite_")) or kind == "missing":
        whole = kind.startswith("int_")
        return f"{label} must be a {'whole ' if whole else ''}number."
    if kind == "literal_error":
        return f"{label}: choose one of {ctx.get('expected')}."
    for needle, message in _RULES:
        if needle in raw:
            return message
    return raw[:1].upper() + raw[1:]


def _form_amount(key: str, value: Any) -> str:
    """A model value in the form's unit (percent fields back to percent), for a message."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    amount = value / _SCALED[key] if key in _SCALED else float(value)
    return f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.10g}"
