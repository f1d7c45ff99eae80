"""Binance's public REST endpoints for the fake exchange: markets, klines, ticker, premium index.

The shapes are Binance's (spot ``/api/v3``, USDT-M ``/fapi/v1``, COIN-M
``/dapi/v1``), written from Binance's documentation so ccxt parses them with
its own code. ``register_public_routes(fake)`` installs them on a
``FakeExchange``; private endpoints (orders, balance, positions) belong in a
module of their own that registers its handlers the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from strategy_agent.data.simulated_market import DEFAULT_ORIGIN_MS
from strategy_agent.models import INTERVAL_MS

if TYPE_CHECKING:
    from tests.fakes.fake_exchange import FakeExchange

MarketKind = Literal["spot", "linear", "inverse"]
TICKER_INTERVAL = "1h"  # the series the ticker and mark price follow
FUNDING_PERIOD_MS = 8 * 3_600_000
_PERPETUAL_DELIVERY = 4_133_404_800_000  # Binance's delivery date of a perpetual
_MAX_LIMIT = {"spot": 1000, "linear": 1500, "inverse": 1500}


@dataclass(frozen=True)
class FakeMarket:
    """One market of the fake; steps and minimums as Binance writes them (strings)."""

    symbol: str  # ccxt unified: BTC/USDT, BTC/USDT:USDT, BTC/USD:BTC
    kind: MarketKind
    qty_step: str
    price_tick: str
    min_qty: str
    min_notional: str
    contract_size: int = 1

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1].split(":")[0]

    @property
    def market_id(self) -> str:
        pair = self.base + self.quote
        return pair + "_PERP" if self.kind == "inverse" else pair


DEFAULT_MARKETS: tuple[FakeMarket, ...] = (
    FakeMarket("BTC/USDT", "spot", "0.00001", "0.01", "0.00001", "5"),
    FakeMarket("ETH/USDT", "spot", "0.0001", "0.01", "0.0001", "5"),
    FakeMarket("SOL/USDT", "spot", "0.001", "0.01", "0.001", "5"),
    FakeMarket("BTC/USDT:USDT", "linear", "0.001", "0.10", "0.001", "100"),
    FakeMarket("ETH/USDT:USDT", "linear", "0.001", "0.01", "0.001", "20"),
    FakeMarket("BTC/USD:BTC", "inverse", "1", "0.1", "1", "0", contract_size=100),
)


@dataclass(frozen=True)
class ExchangeRequest:
    """One request as received: method, path, query parameters (last value wins), body."""

    method: str
    path: str
    params: dict[str, str]
    body: str = ""


@dataclass(frozen=True)
class FakeResponse:
    """What a handler answers: status, body (JSON, or a ``str`` sent as text), headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["FakeExchange", ExchangeRequest], FakeResponse]


def binance_error(status: int, code: int, message: str) -> FakeResponse:
    """An error answer in Binance's shape ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return FakeResponse(status, {"code": code, "msg": message})


def register_public_routes(fake: FakeExchange) -> None:
    prefixes: tuple[tuple[str, MarketKind], ...] = (
        ("/api/v3", "spot"),
        ("/fapi/v1", "linear"),
        ("/dapi/v1", "inverse"),
    )
    for prefix, kind in prefixes:
        fake.route("GET", f"{prefix}/exchangeInfo", _exchange_info(kind))
        fake.route("GET", f"{prefix}/klines", _klines(kind))
        fake.route("GET", f"{prefix}/ticker/24hr", _ticker(kind))
    fake.route("GET", "/fapi/v1/premiumIndex", _premium_index("linear"))
    fake.route("GET", "/dapi/v1/premiumIndex", _premium_index("inverse"))


def _exchange_info(kind: MarketKind) -> Handler:
    def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
        symbols = [_symbol_info(m) for m in fake.markets.values() if m.kind == kind]
        return FakeResponse(
            200,
            {
                "timezone": "UTC",
                "serverTime": fake.clock.now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": symbols,
            },
        )

    return handle


def _symbol_info(market: FakeMarket) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": market.price_tick,
            "maxPrice": "1000000",
            "tickSize": market.price_tick,
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": market.min_qty,
            "maxQty": "9000",
            "stepSize": market.qty_step,
        },
    ]
    info: dict[str, Any] = {
        "symbol": market.market_id,
        "status": "TRADING",
        "baseAsset": market.base,
        "quoteAsset": market.quote,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
    }
    if market.kind == "spot":
        filters.append({"filterType": "NOTIONAL", "minNotional": market.min_notional})
        info |= {"isSpotTradingAllowed": True, "permissions": ["SPOT"]}
    else:
        settle = market.quote if market.kind == "linear" else market.base
        info |= {
            "pair": market.base + market.quote,
            "contractType": "PERPETUAL",
            "deliveryDate": _PERPETUAL_DELIVERY,
            "onboardDate": DEFAULT_ORIGIN_MS,
            "marginAsset": settle,
            "contractSize": market.contract_size,
            "contractStatus": "TRADING",
        }
        if market.kind == "linear":
            filters.append({"filterType": "MIN_NOTIONAL", "notional": market.min_notional})
    info["filters"] = filters
    return info


def _lookup(
    fake: FakeExchange, request: ExchangeRequest, kind: MarketKind
) -> FakeMarket | FakeResponse:
    market = fake.market(request.params.get("symbol", ""), kind)
    return market if market is not None else binance_error(400, -1121, "Invalid symbol.")


def _klines(kind: MarketKind) -> Handler:
    def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
        market = _lookup(fake, request, kind)
        if isinstance(market, FakeResponse):
            return market
        interval = request.params.get("interval", "")
        if interval not in INTERVAL_MS:
            return binance_error(400, -1120, "Invalid interval.")
        limit = min(int(request.params.get("limit", 500)), _MAX_LIMIT[kind])
        start = request.params.get("startTime")
        end = request.params.get("endTime")
        end_ms = int(end) + 1 if end is not None else fake.clock.now_ms() + 1
        step = INTERVAL_MS[interval]
        if start is not None:
            rows = fake.candles(market.symbol, interval, int(start), end_ms)[:limit]
        else:  # the latest ``limit`` candles ending at endTime (or now)
            lookback_ms = (limit + 1) * step
            rows = fake.candles(market.symbol, interval, end_ms - lookback_ms, end_ms)[-limit:]
        return FakeResponse(200, [_kline(row, step) for row in rows])

    return handle


def _kline(row: list[float], step: int) -> list[Any]:
    ts, open_, high, low, close, volume = row
    return [
        int(ts),
        repr(open_),
        repr(high),
        repr(low),
        repr(close),
        repr(volume),
        int(ts) + step - 1,
        repr(volume * close),
        100,
        repr(volume / 2),
        repr(volume * close / 2),
        "0",
    ]


def _ticker(kind: MarketKind) -> Handler:
    def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
        market = _lookup(fake, request, kind)
        if isinstance(market, FakeResponse):
            return market
        now = fake.clock.now_ms()
        day = fake.candles(market.symbol, TICKER_INTERVAL, now - 86_400_000, now + 1)
        last, open_ = day[-1][4], day[0][1]
        tick = float(market.price_tick)
        body = {
            "symbol": market.market_id,
            "priceChange": repr(last - open_),
            "priceChangePercent": f"{(last - open_) / open_ * 100:.3f}",
            "weightedAvgPrice": repr(float(np.mean([r[4] for r in day]))),
            "lastPrice": repr(last),
            "openPrice": repr(open_),
            "highPrice": repr(max(r[2] for r in day)),
            "lowPrice": repr(min(r[3] for r in day)),
            "volume": repr(sum(r[5] for r in day)),
            "quoteVolume": repr(sum(r[5] * r[4] for r in day)),
            "openTime": int(day[0][0]),
            "closeTime": now,
            "count": 1000,
        }
        if kind == "spot":  # Binance's futures 24h ticker has no bid and ask
            body |= {
                "prevClosePrice": repr(open_),
                "bidPrice": repr(last - tick),
                "bidQty": "1.5",
                "askPrice": repr(last + tick),
                "askQty": "2.5",
            }
        return FakeResponse(200, body if kind != "inverse" else [body])

    return handle


def _premium_index(kind: MarketKind) -> Handler:
    def handle(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
        market = _lookup(fake, request, kind)
        if isinstance(market, FakeResponse):
            return market
        now = fake.clock.now_ms()
        last = fake.last_price(market.symbol)
        body = {
            "symbol": market.market_id,
            "markPrice": repr(last * 1.0002),
            "indexPrice": repr(last),
            "estimatedSettlePrice": repr(last),
            "lastFundingRate": f"{fake.funding_rate:.8f}",
            "interestRate": "0.00010000",
            "nextFundingTime": (now // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS,
            "time": now,
        }
        return FakeResponse(200, body if kind == "linear" else [body])

    return handle
