"""Which symbols a strategy may trade: validation against an exchange's markets, and listings.

A symbol is ccxt's unified notation: ``BASE/QUOTE`` for spot (``BTC/USDT``),
``BASE/QUOTE:SETTLE`` for a swap (``BTC/USDT:USDT``). The simulated market
lists ``SIMULATED_SYMBOLS``; a real exchange lists what ``load_markets()``
returns. Anything else, and any market Strategy Agent cannot trade (inverse
contracts, dated futures, options, inactive markets), is refused with the
reason and, where one is close, the symbol the user probably meant.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from strategy_agent.data.market_rules import SimulatedMarketRules
from strategy_agent.data.simulated_market import SIMULATED_SYMBOLS
from strategy_agent.errors import ConfigurationError

SIMULATED_EXCHANGE = "simulated"
MarketKind = Literal["spot", "swap"]
# Capitals, digits and the few marks ccxt uses; the settle part may carry a future's suffix.
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._]*/[A-Z0-9][A-Z0-9._]*(:[A-Z0-9][A-Z0-9._-]*)?$")


@dataclass(frozen=True)
class MarketListing:
    """One market as the ``markets`` command shows it.

    ``min_amount`` and ``amount_step`` are in the order unit (base currency on
    spot, contracts on swaps); ``min_cost`` is in the quote currency; ``note``
    says why an unsupported market cannot be traded.
    """

    symbol: str
    type: str
    base: str
    quote: str
    settle: str | None
    active: bool
    amount_step: float | None
    min_amount: float | None
    min_cost: float | None
    contract_size: float | None
    supported: bool
    note: str = ""


def validate_symbols(
    exchange_id: str,
    symbols: Sequence[str],
    markets: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Problems with ``symbols`` on ``exchange_id`` (empty when every one is tradable).

    ``markets`` is ccxt's ``exchange.markets`` (``load_markets()`` output); it
    is not needed for the simulated market. Each problem is one sentence that
    names the symbol and says what to write instead.
    """
    if exchange_id != SIMULATED_EXCHANGE and markets is None:
        raise ValueError(f"validate_symbols needs {exchange_id}'s markets (load_markets())")
    problems = []
    for symbol in symbols:
        problem = symbol_problem(symbol, exchange_id, markets)
        if problem:
            problems.append(problem)
    return problems


def symbol_problem(
    symbol: str, exchange_id: str, markets: Mapping[str, Mapping[str, Any]] | None = None
) -> str | None:
    """Why ``symbol`` cannot be traded on ``exchange_id``, or ``None`` when it can."""
    if exchange_id == SIMULATED_EXCHANGE:
        return _simulated_problem(symbol)
    known = markets or {}
    market = known.get(symbol)
    if market is None:
        return _unknown(symbol, exchange_id, list(known))
    reason = unsupported_reason(market)
    if reason:
        return reason
    if market.get("active") is False:
        return f"{symbol} is not trading on {exchange_id} now (the exchange marks it inactive)"
    return None


_COMMON_QUOTES = ("USDT", "USDC", "FDUSD", "USD", "EUR", "BTC", "ETH")


def symbol_syntax_problem(symbol: str) -> str | None:
    """Why ``symbol`` is not written in ccxt's notation, else None (no markets needed).

    ``btcusdt`` is refused with the likely spelling ``'BTC/USDT'``; whether the
    market exists is for ``symbol_problem`` with the exchange's markets.
    """
    if _SYMBOL.match(symbol.strip()):
        return None
    squashed = _squash(symbol)
    guesses = [
        f"{squashed[: -len(quote)]}/{quote}"
        for quote in _COMMON_QUOTES
        if squashed.endswith(quote) and len(squashed) > len(quote)
    ][:1]
    return _unknown(symbol, SIMULATED_EXCHANGE, guesses)


def unsupported_reason(market: Mapping[str, Any]) -> str | None:
    """Why Strategy Agent cannot trade this ccxt market, or ``None`` when it can.

    Supported: spot, and linear perpetual swaps (settled in the quote currency).
    """
    symbol = market.get("symbol", "?")
    kind = market.get("type")
    if kind == "swap" and market.get("inverse"):
        settle = market.get("settle") or market.get("base") or "the base coin"
        return (
            f"{symbol} is an inverse contract (margined and settled in {settle}); only spot and "
            f"linear (quote-settled) contracts are supported: pick a symbol like "
            f"'{market.get('base', 'BTC')}/USDT:USDT'"
        )
    if kind not in ("spot", "swap"):
        return (
            f"{symbol} is {'an' if kind == 'option' else 'a'} {kind or 'unknown'} market; only "
            f"spot markets and perpetual swaps are supported"
        )
    return None


def market_kind(market: Mapping[str, Any]) -> MarketKind:
    """``"spot"`` or ``"swap"`` for a supported market; ``ConfigurationError`` otherwise."""
    reason = unsupported_reason(market)
    if reason:
        raise ConfigurationError(reason)
    return "swap" if market.get("type") == "swap" else "spot"


def _simulated_problem(symbol: str) -> str | None:
    if symbol in SIMULATED_SYMBOLS:
        return None
    return _unknown(symbol, SIMULATED_EXCHANGE, list(SIMULATED_SYMBOLS))


def _unknown(symbol: str, exchange_id: str, known: list[str]) -> str:
    suggestions = _suggestions(symbol, known)
    hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    where = "the simulated market" if exchange_id == SIMULATED_EXCHANGE else exchange_id
    listing = f"`python -m strategy_agent markets --exchange {exchange_id}`"
    if not _SYMBOL.match(symbol.strip()):
        return (
            f"{symbol!r} is not a symbol in ccxt's notation: write BASE/QUOTE in capitals, e.g. "
            f"'BTC/USDT' (spot) or 'BTC/USDT:USDT' (USDT-settled swap){hint}"
        )
    return f"{symbol!r} is not a market on {where}{hint} (list them with {listing})"


def _suggestions(symbol: str, known: list[str]) -> list[str]:
    """Listed symbols that are ``symbol`` up to case and separators, else the closest ones."""
    squashed = _squash(symbol)
    for same in (_squash, lambda k: _squash(k.split(":")[0])):
        exact = sorted(k for k in known if same(k) == squashed)
        if exact:
            return exact[:2]
    upper = symbol.strip().upper()
    return difflib.get_close_matches(upper, known, n=2, cutoff=0.75)


def _squash(symbol: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", symbol.upper())


def list_markets(
    exchange_id: str,
    type: str | None = None,
    quote: str | None = None,
    *,
    markets: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[MarketListing]:
    """The markets of ``exchange_id``, optionally of one ``type`` (spot, swap...) and ``quote``.

    ``markets`` is ccxt's ``exchange.markets``; for the simulated market it is
    not needed. Sorted by symbol; unsupported markets are listed with a note.
    """
    if exchange_id == SIMULATED_EXCHANGE:
        listings = [_simulated_listing(symbol) for symbol in SIMULATED_SYMBOLS]
    else:
        if markets is None:
            raise ValueError(f"list_markets needs {exchange_id}'s markets (load_markets())")
        listings = [_listing(market) for market in markets.values()]
    wanted_quote = quote.upper() if quote else None
    return sorted(
        (
            listing
            for listing in listings
            if (type is None or listing.type == type)
            and (wanted_quote is None or listing.quote.upper() == wanted_quote)
        ),
        key=lambda listing: listing.symbol,
    )


def _listing(market: Mapping[str, Any]) -> MarketListing:
    reason = unsupported_reason(market)
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    return MarketListing(
        symbol=str(market.get("symbol")),
        type=str(market.get("type")),
        base=str(market.get("base")),
        quote=str(market.get("quote")),
        settle=market.get("settle"),
        active=market.get("active") is not False,
        amount_step=precision.get("amount"),
        min_amount=(limits.get("amount") or {}).get("min"),
        min_cost=(limits.get("cost") or {}).get("min"),
        contract_size=market.get("contractSize"),
        supported=reason is None,
        note=reason.split(";")[0] if reason else "",
    )


def _simulated_listing(symbol: str) -> MarketListing:
    rules = SimulatedMarketRules().rules_for(symbol)
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return MarketListing(
        symbol=symbol,
        type="swap" if settle else "spot",
        base=base,
        quote=quote,
        settle=settle or None,
        active=True,
        amount_step=rules.qty_step,
        min_amount=rules.min_qty,
        min_cost=rules.min_notional,
        contract_size=1.0 if settle else None,
        supported=True,
    )
