"""The New strategy form's "Test model" and "Test exchange" buttons and their answers.

Each test calls ``strategy_agent.connectivity`` and keeps its answer in the
session (``CHECKS``); the exchange test also keeps the exchange's tradable
symbols (``LOADED_SYMBOLS``, by exchange id) for the form's symbol list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st
from pydantic import SecretStr

from strategy_agent.connectivity import (
    ConnectionCheck,
    check_exchange_connection,
    check_model_connection,
)
from strategy_agent.models import ExchangeConfig, ModelConfig

CHECKS = "form_checks"
LOADED_SYMBOLS = "form_loaded_symbols"  # exchange id -> its tradable symbols, once loaded


def run_model_test(values: dict[str, Any]) -> None:
    """The "Test model" button: one tiny call to the model; the answer shows under it."""
    try:
        config = ModelConfig.model_validate(_section(values, "llm"))
    except ValueError as error:
        _store_check("model", False, f"fix the model fields first: {error}")
        return
    key = str(values.get("llm.session_key") or "").strip() or None
    _run_check("model", check_model_connection, config, SecretStr(key) if key else None)


def run_exchange_test(values: dict[str, Any]) -> None:
    """The "Test exchange" button: load its markets (they fill the symbol list)."""
    try:
        config = ExchangeConfig.model_validate(_section(values, "exchange"))
    except ValueError as error:
        _store_check("exchange", False, f"fix the exchange fields first: {error}")
        return
    check = _run_check("exchange", check_exchange_connection, config)
    if check is not None and check.symbols:
        loaded = dict(st.session_state.get(LOADED_SYMBOLS) or {})
        loaded[config.exchange_id] = list(check.symbols)
        st.session_state[LOADED_SYMBOLS] = loaded


def _section(values: dict[str, Any], section: str) -> dict[str, Any]:
    """One section of the form values, as the config model expects it (blanks -> None)."""
    skip = {"session_key", "confirm_live", "api_key", "secret_key"}
    out: dict[str, Any] = {}
    for key, value in values.items():
        head, _, name = key.partition(".")
        if head != section or name in skip:
            continue
        if isinstance(value, str) and name.endswith(("_env", "api_base", "api_url")):
            value = value.strip() or None
        out[name] = value
    return out


def _run_check(
    kind: str, check: Callable[..., ConnectionCheck], *args: Any
) -> ConnectionCheck | None:
    try:
        result = check(*args)
    except Exception as error:  # show any failure next to the button, never a traceback
        _store_check(kind, False, f"{type(error).__name__}: {error}")
        return None
    _store_check(kind, result.ok, result.message)
    return result


def _store_check(kind: str, ok: bool, message: str) -> None:
    st.session_state.setdefault(CHECKS, {})[kind] = (ok, message)


def check_result(kind: str) -> None:
    """The last test's answer, green or red."""
    result = st.session_state.get(CHECKS, {}).get(kind)
    if result is None:
        return
    ok, message = result
    if ok:
        st.success(message, icon=":material/check_circle:")
    else:
        st.error(message, icon=":material/error:")
