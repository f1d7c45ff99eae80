""" "Test" buttons of the app: can we reach this model, this exchange?

Both answer a ``ConnectionCheck`` (never raise for expected failures), so the
page shows the message next to the button.
"""

from __future__ import annotations

import time

from pydantic import Field, SecretStr

from strategy_agent.errors import StrategyAgentError
from strategy_agent.models import Dto, ExchangeConfig, ModelConfig, UserRequest


class ConnectionCheck(Dto):
    """Outcome of a connection test, in words for people."""

    ok: bool
    message: str
    symbols: list[str] = Field(default_factory=list)


def check_model_connection(config: ModelConfig, api_key: SecretStr | None) -> ConnectionCheck:
    """One tiny call to the model (built-in rules need none)."""
    if config.is_builtin:
        from strategy_agent.decision.builtin_policies import builtin_policy

        try:
            builtin_policy(config.model_id)
        except StrategyAgentError as error:
            return ConnectionCheck(ok=False, message=str(error))
        return ConnectionCheck(ok=True, message=f"built-in rule {config.model_id}: no key needed")
    from strategy_agent.decision.llm_policy import build_llm_policy

    request = UserRequest(llm=config)
    started = time.perf_counter()
    try:
        policy = build_llm_policy(request, {}, api_key=api_key, use_cache=False)
        reply = policy.ping()
    except StrategyAgentError as error:
        return ConnectionCheck(ok=False, message=str(error))
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    preview = reply.strip().replace("\n", " ")[:40] or "(empty reply)"
    return ConnectionCheck(
        ok=True,
        message=f"{config.provider}/{config.model_id} answered in {elapsed_ms:,.0f} ms: {preview!r}",
    )


def check_exchange_connection(config: ExchangeConfig) -> ConnectionCheck:
    """Load the exchange's markets (the simulated market is always there).

    ``symbols``: the tradable markets of the config's market type (swaps for
    ``swap``, spot pairs otherwise), for the form's symbol list.
    """
    from strategy_agent.factory import unsupported

    problem = unsupported(UserRequest(exchange=config))
    if problem is not None and problem[0] != "trading.symbols":
        return ConnectionCheck(ok=False, message=problem[1])
    if config.exchange_id != "simulated":
        return _check_real_exchange(config)
    from strategy_agent.clock import ManualClock
    from strategy_agent.data.simulated_market import SimulatedMarketDataSource

    symbols = SimulatedMarketDataSource(clock=ManualClock(0)).available_symbols()
    return ConnectionCheck(
        ok=True,
        message=f"simulated market ready: {len(symbols)} symbols, offline, deterministic",
        symbols=symbols,
    )


def _check_real_exchange(config: ExchangeConfig) -> ConnectionCheck:
    from strategy_agent.data.symbols import list_markets
    from strategy_agent.wiring import load_markets

    started = time.perf_counter()
    try:
        markets = load_markets(config.exchange_id, config.api_url)
    except StrategyAgentError as error:
        return ConnectionCheck(
            ok=False,
            message=f"could not load {config.exchange_id}'s markets: {error}. You can still "
            f"type the symbols; they are checked when the strategy starts",
        )
    kind = "swap" if config.market_type == "swap" else "spot"
    listed = list_markets(config.exchange_id, kind, markets=markets)
    symbols = [m.symbol for m in listed if m.supported and m.active]
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return ConnectionCheck(
        ok=True,
        message=f"{config.exchange_id}: {len(symbols)} tradable {kind} markets loaded in "
        f"{elapsed_ms:,.0f} ms (public data, no key needed for paper trading)",
        symbols=symbols,
    )
