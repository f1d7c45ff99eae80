"""The "New strategy" form: three sections (model, exchange, trading) as one ``UserRequest``.

Widgets are keyed ``form.<section>.<field>`` and have no bounds of their own
(a bounded ``st.number_input`` keeps its previous value when the typed one is
out of range, so the form would save what nobody typed): every value reaches
``views.forms.build_request``, which validates the whole set on each rerun.
A field's message shows under it as soon as the field is changed to something
invalid, every message shows once "Create strategy" was pressed, and a message
goes as soon as its field is fixed. The page saves only a fully valid request,
exactly as typed. The "Test" buttons call ``strategy_agent.connectivity`` (one
tiny model call; loading the exchange's markets, which then fill the symbol list).

On a real exchange the symbols are checked against its markets once they are
loaded (Test exchange, or on Create). When they cannot be loaded (no network)
the form says so and still creates the strategy with the typed symbols, which
are checked when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from strategy_agent.models import INTERVAL_MS
from strategy_agent.ui.connection_tests import (
    CHECKS,
    LOADED_SYMBOLS,
    check_result,
    run_exchange_test,
    run_model_test,
)
from strategy_agent.ui.widgets import select_strategy, show_field_error
from strategy_agent.ui_runtime import get_runner, open_store
from strategy_agent.views import forms
from strategy_agent.views.strategies import (
    builtin_description,
    builtin_models,
    create_strategy,
    escape_markdown,
    symbol_choices,
)
from strategy_agent.wiring import SIMULATED, cached_markets, load_markets

PREFIX = "form."
SUBMITTED = "form_submitted"
OPENED_WITH = "form_opened_with"
OPEN = "form_open"
FLASH = "flash"
EXCHANGES = [SIMULATED, "okx", "binance", "bybit", "kraken", "coinbase", "kucoin", "bitget"]


def open_form(values: dict[str, Any] | None = None) -> None:
    """Show the form, filled with ``values`` (the embedded default when omitted)."""
    reset_form(values)
    st.session_state[OPEN] = True


def reset_form(values: dict[str, Any] | None = None) -> None:
    for key in [k for k in st.session_state if str(k).startswith(PREFIX)]:
        del st.session_state[key]
    opened_with = values or forms.default_values()
    for name, value in opened_with.items():
        st.session_state[PREFIX + name] = value
    st.session_state[OPENED_WITH] = dict(opened_with)
    st.session_state[SUBMITTED] = False
    st.session_state[CHECKS] = {}
    st.session_state.pop(LOADED_SYMBOLS, None)


def _values() -> dict[str, Any]:
    values = forms.default_values()
    for key, value in st.session_state.items():
        if str(key).startswith(PREFIX):
            values[str(key)[len(PREFIX) :]] = value
    return values


def _markets(values: dict[str, Any], load: bool) -> tuple[dict[str, Any] | None, str | None]:
    """The chosen real exchange's markets (loaded now when ``load``), and why there are none."""
    exchange_id = str(values.get("exchange.exchange_id") or SIMULATED)
    api_url = values.get("exchange.api_url") or None
    if exchange_id == SIMULATED:
        return None, None
    markets = cached_markets(exchange_id, api_url)
    if markets is not None or not load:
        return markets, None
    try:
        return load_markets(exchange_id, api_url), None
    except Exception as error:  # no network, unknown exchange: say so, keep the typed symbols
        return None, f"{exchange_id}'s markets could not be loaded ({error})"


def _submit() -> None:
    values = _values()
    markets, not_loaded = _markets(values, load=True)
    outcome = forms.build_request(values, markets)
    st.session_state[SUBMITTED] = True
    if not outcome.ok or outcome.request is None:
        return
    with open_store() as store:
        strategy_id = create_strategy(store, get_runner(), outcome.request, outcome.session_key)
    select_strategy(strategy_id)
    st.session_state[OPEN] = False
    st.session_state[FLASH] = (
        f"Created **{escape_markdown(outcome.request.trading.strategy_name)}** ({strategy_id}). "
        "Step it once or start it below."
    )
    if not_loaded:
        st.session_state[FLASH] += (
            f" Note: {not_loaded}; the symbols were not checked against its markets and "
            "will be when the strategy starts."
        )


def _close() -> None:
    st.session_state[OPEN] = False
    st.session_state[SUBMITTED] = False


def _current_errors() -> tuple[dict[str, str], bool]:
    """The messages to show now, and whether Create was pressed since the form opened.

    Validated again on every rerun, so a fixed field loses its message at once;
    before Create is pressed only the fields changed since the form opened
    speak up (an untouched form is not a wall of red).
    """
    values = _values()
    errors = forms.build_request(values, _markets(values, load=False)[0]).errors
    if st.session_state.get(SUBMITTED):
        return errors, True
    opened_with = st.session_state.get(OPENED_WITH, {})
    changed = {
        key: message
        for key, message in errors.items()
        if PREFIX + key in st.session_state
        and st.session_state[PREFIX + key] != opened_with.get(key)
    }
    return changed, False


def _label(labels: dict[str, str]) -> Callable[[Any], str]:
    """A ``format_func`` showing each option's label (the option itself when unknown)."""
    return lambda option: labels.get(option, str(option))


def _w(name: str) -> str:
    return PREFIX + name


def render_form() -> None:
    """The form itself (call only while it is open)."""
    errors, submitted = _current_errors()
    with st.container(border=True):
        st.subheader(":material/add_circle: New strategy")
        st.caption(
            "Three parts, validated together: nothing is saved until every field is valid. "
            "The defaults run offline: a built-in rule on the simulated market, paper trading."
        )
        left, right = st.columns(2, gap="medium")
        with left, st.container(border=True):
            _model_section(errors)
        with right, st.container(border=True):
            _exchange_section(errors)
        with st.container(border=True):
            _trading_section(errors)
        if errors and submitted:
            count = len(errors)
            st.error(
                f"Nothing was saved: {count} field(s) need attention (see the messages above).",
                icon=":material/error:",
            )
            show_field_error(errors, "form")
        with st.container(horizontal=True):
            st.button(
                "Create strategy",
                type="primary",
                icon=":material/check:",
                on_click=_submit,
                key="form_submit",
            )
            st.button("Cancel", on_click=_close, key="form_cancel")


def _model_section(errors: dict[str, str]) -> None:
    st.markdown("**1 · Model** — who decides")
    provider = st.selectbox(
        "Provider",
        list(forms.PROVIDERS),
        format_func=_label(forms.PROVIDERS),
        key=_w("llm.provider"),
    )
    show_field_error(errors, "llm.provider")
    if provider == "builtin":
        choices = builtin_models()
        if st.session_state.get(_w("llm.model_id")) not in choices:
            st.session_state[_w("llm.model_id")] = choices[0]
        rule = st.selectbox("Built-in rule", choices, key=_w("llm.model_id"))
        show_field_error(errors, "llm.model_id")
        st.caption(builtin_description(str(rule)))
        return
    if st.session_state.get(_w("llm.model_id")) in builtin_models():
        st.session_state[_w("llm.model_id")] = ""
    st.text_input("Model id", key=_w("llm.model_id"), placeholder="gpt-4o-mini")
    show_field_error(errors, "llm.model_id")
    st.text_input(
        "API key (this session only, never saved)",
        type="password",
        key=_w("llm.session_key"),
        help="Kept in this app process's memory; or leave empty and name an environment variable.",
    )
    st.text_input(
        "or environment variable with the key",
        key=_w("llm.api_key_env"),
        placeholder="OPENAI_API_KEY",
    )
    show_field_error(errors, "llm.api_key_env")
    st.text_input(
        "API base (optional)", key=_w("llm.api_base"), placeholder="http://localhost:11434"
    )
    show_field_error(errors, "llm.api_base")
    if st.session_state.get(_w("llm.temperature")) is None:
        st.session_state[_w("llm.temperature")] = 0.2
    st.number_input("Temperature", step=0.1, key=_w("llm.temperature"))
    show_field_error(errors, "llm.temperature")
    st.selectbox(
        "Fallback when the model fails",
        builtin_models(),
        key=_w("llm.fallback"),
        help="A built-in rule used for a cycle whose reply is unusable (noop holds).",
    )
    st.button(
        "Test model",
        icon=":material/network_check:",
        on_click=lambda: run_model_test(_values()),
        key="test_model",
    )
    check_result("model")


def _exchange_section(errors: dict[str, str]) -> None:
    st.markdown("**2 · Exchange** — where orders go")
    st.selectbox(
        "Exchange",
        EXCHANGES,
        key=_w("exchange.exchange_id"),
        accept_new_options=True,
        help="simulated runs offline; any ccxt exchange id trades its live prices (paper "
        "needs no key).",
    )
    show_field_error(errors, "exchange.exchange_id")
    mode = st.radio(
        "Trading mode",
        list(forms.TRADING_MODES),
        format_func=_label(forms.TRADING_MODES),
        horizontal=True,
        key=_w("exchange.trading_mode"),
    )
    if mode == "live":
        st.warning("Live mode places real orders with real money.", icon=":material/warning:")
        st.text_input(f"Type {forms.LIVE_CONFIRMATION} to confirm", key=_w("exchange.confirm_live"))
        show_field_error(errors, "exchange.confirm_live")
    st.selectbox(
        "Market type",
        list(forms.MARKET_TYPES),
        format_func=_label(forms.MARKET_TYPES),
        key=_w("exchange.market_type"),
    )
    if mode == "paper":
        fee, slip = st.columns(2)
        with fee:
            st.number_input("Fee (bps)", step=1.0, key=_w("exchange.fee_bps"))
            show_field_error(errors, "exchange.fee_bps")
        with slip:
            st.number_input("Slippage (bps)", step=1.0, key=_w("exchange.slippage_bps"))
            show_field_error(errors, "exchange.slippage_bps")
    else:
        st.text_input(
            "Env var with the API key", key=_w("exchange.api_key_env"), placeholder="BINANCE_KEY"
        )
        show_field_error(errors, "exchange.api_key_env")
        st.text_input(
            "Env var with the secret",
            key=_w("exchange.secret_key_env"),
            placeholder="BINANCE_SECRET",
        )
        show_field_error(errors, "exchange.secret_key_env")
    st.button(
        "Test exchange",
        icon=":material/network_check:",
        on_click=lambda: run_exchange_test(_values()),
        key="test_exch",
    )
    check_result("exchange")


def _trading_section(errors: dict[str, str]) -> None:
    st.markdown("**3 · Trading** — what to trade, within which limits")
    name, capital, interval = st.columns([2, 1, 1])
    with name:
        st.text_input("Strategy name", key=_w("trading.strategy_name"))
        show_field_error(errors, "trading.strategy_name")
    with capital:
        st.number_input("Initial capital (USDT)", step=1000.0, key=_w("trading.initial_capital"))
        show_field_error(errors, "trading.initial_capital")
    interval.selectbox("Candle interval", list(INTERVAL_MS), key=_w("trading.interval"))
    exchange_id = st.session_state.get(_w("exchange.exchange_id"), SIMULATED)
    loaded = st.session_state.get(LOADED_SYMBOLS) or {}
    choices = symbol_choices(exchange_id, loaded.get(exchange_id))
    if exchange_id != SIMULATED and not choices:
        st.caption(
            f"Press **Test exchange** to load {exchange_id}'s markets into the list, or type "
            "symbols as BASE/QUOTE (spot, e.g. BTC/USDT) or BASE/QUOTE:SETTLE (swap, e.g. "
            "BTC/USDT:USDT)."
        )
    current = st.session_state.get(_w("trading.symbols")) or []
    st.multiselect(
        "Symbols",
        sorted(set(choices) | set(current)),
        key=_w("trading.symbols"),
        accept_new_options=True,
        help="Pick from the exchange's markets (press Test exchange to load them) or type one.",
    )
    show_field_error(errors, "trading.symbols")
    _limits(errors)
    _prompt(errors)


def _limits(errors: dict[str, str]) -> None:
    cols = st.columns(4)
    with cols[0]:
        _number("Max leverage (x)", "trading.max_leverage", 1.0, errors)
        _number("Max open positions", "trading.max_positions", 1, errors)
    with cols[1]:
        _number("Per-instrument cap (% of equity)", "trading.max_position_pct", 5.0, errors)
        _number("Gross exposure cap (x equity)", "trading.max_gross_exposure", 0.1, errors)
    with cols[2]:
        _number("Net exposure cap (x equity)", "trading.max_net_exposure", 0.1, errors)
        _number("Cool-down after a loss (bars)", "trading.cooldown_bars", 1, errors)
    with cols[3]:
        st.slider("Min confidence", 0.0, 1.0, step=0.05, key=_w("trading.min_confidence"))
        st.toggle("Allow shorting", key=_w("trading.allow_short"))
        show_field_error(errors, "trading.allow_short")


def _number(label: str, name: str, step: float, errors: dict[str, str]) -> None:
    """A number field without widget bounds (the form's validation says what is allowed)."""
    st.number_input(label, step=step, key=_w(name))
    show_field_error(errors, name)


def _prompt(errors: dict[str, str]) -> None:
    from strategy_agent.decision.prompt_choice import DEFAULT_TEMPLATE_ID
    from strategy_agent.views.prompt_lab import template_choices

    templates = template_choices()
    options = [forms.CUSTOM_PROMPT, *templates]
    labels = {forms.CUSTOM_PROMPT: "Custom prompt (write below)", **templates}
    labels[DEFAULT_TEMPLATE_ID] = f"{templates[DEFAULT_TEMPLATE_ID]} (the default for an LLM)"
    if st.session_state.get(_w("trading.prompt_choice")) not in options:
        st.session_state[_w("trading.prompt_choice")] = forms.CUSTOM_PROMPT
    choice = st.selectbox(
        "Strategy prompt", options, format_func=_label(labels), key=_w("trading.prompt_choice")
    )
    if choice == forms.CUSTOM_PROMPT:
        st.text_area(
            "Your strategy, in plain words",
            key=_w("trading.custom_prompt"),
            height=120,
            placeholder="Trend follower: hold BTC while EMA 12 is above EMA 26; cut losers fast...",
        )
        show_field_error(errors, "trading.custom_prompt")
    else:
        st.caption("The template's text becomes the prompt; edit it later in the Prompt lab.")
