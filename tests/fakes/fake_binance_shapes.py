"""Binance's private answers in Binance's shapes (orders, trades, accounts, positions) for the fake.

Kept apart from ``fake_binance_private.py`` (which decides what happens to an
order) so each stays readable; numbers are Binance decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from tests.fakes.fake_binance_public import ExchangeRequest, FakeMarket, FakeResponse

if TYPE_CHECKING:
    from tests.fakes.fake_exchange import FakeExchange

Kind = Literal["spot", "linear"]
FUTURES_LEVERAGE = 20.0


@dataclass
class FakeOrder:
    """One order on the fake; quantities in base (spot) or contracts (USDT-M)."""

    kind: Kind
    order_id: int
    client_order_id: str
    market: FakeMarket
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT
    orig_qty: float
    price: float
    time_in_force: str
    reduce_only: bool
    time: int
    status: str = "NEW"
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    trades: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FuturesPosition:
    amount: float = 0.0  # signed contracts
    entry_price: float = 0.0


def order_json(order: FakeOrder, *, with_fills: bool) -> dict[str, Any]:
    """An order as Binance answers it (spot FULL with ``fills``, or USDT-M RESULT)."""
    body: dict[str, Any] = {
        "symbol": order.market.market_id,
        "orderId": order.order_id,
        "clientOrderId": order.client_order_id,
        "price": num(order.price),
        "origQty": num(order.orig_qty),
        "executedQty": num(order.executed_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "time": order.time,
        "updateTime": order.time,
    }
    if order.kind == "spot":
        body |= {
            "orderListId": -1,
            "cummulativeQuoteQty": num(order.cum_quote),
            "transactTime": order.time,
            "workingTime": order.time,
            "origQuoteOrderQty": "0",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if with_fills:
            body["fills"] = [
                {
                    "price": num(t["price"]),
                    "qty": num(t["qty"]),
                    "commission": num(t["commission"]),
                    "commissionAsset": t["asset"],
                    "tradeId": t["id"],
                }
                for t in order.trades
            ]
        return body
    average = order.cum_quote / order.executed_qty if order.executed_qty else 0.0
    return body | {
        "avgPrice": num(average),
        "cumQty": num(order.executed_qty),
        "cumQuote": num(order.cum_quote),
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
    }


def spot_account(fake: FakeExchange, balances: dict[str, float]) -> FakeResponse:
    """GET /api/v3/account: free balances, nothing locked."""
    balances = [
        {"asset": asset, "free": num(free), "locked": "0.00000000"}
        for asset, free in balances.items()
    ]
    return FakeResponse(
        200,
        {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": fake.clock.now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
        },
    )


def position_rows(
    fake: FakeExchange, positions: dict[str, FuturesPosition]
) -> list[dict[str, Any]]:
    """positionRisk rows (v3): open positions only, marked at the last price."""
    rows = []
    for market_id, position in positions.items():
        if position.amount == 0:
            continue
        market = fake.market(market_id, "linear")
        assert market is not None
        mark = fake.last_price(market.symbol)
        pnl = position.amount * (mark - position.entry_price)
        rows.append(
            {
                "symbol": market_id,
                "positionSide": "BOTH",
                "positionAmt": num(position.amount),
                "entryPrice": num(position.entry_price),
                "breakEvenPrice": num(position.entry_price),
                "markPrice": num(mark),
                "unRealizedProfit": num(pnl),
                "liquidationPrice": "0",
                "isolatedMargin": "0",
                "notional": num(position.amount * mark),
                "marginAsset": "USDT",
                "isolatedWallet": "0",
                "initialMargin": num(abs(position.amount * mark) / FUTURES_LEVERAGE),
                "maintMargin": "0",
                "positionInitialMargin": "0",
                "openOrderInitialMargin": "0",
                "adl": 0,
                "bidNotional": "0",
                "askNotional": "0",
                "updateTime": fake.clock.now_ms(),
            }
        )
    return rows


def futures_account(
    fake: FakeExchange, wallet: float, positions: dict[str, FuturesPosition]
) -> FakeResponse:
    """GET /fapi/v3/account: the USDT wallet, margin taken by the positions."""
    rows = position_rows(fake, positions)
    pnl = sum(float(r["unRealizedProfit"]) for r in rows)
    margin = sum(float(r["initialMargin"]) for r in rows)
    asset = {
        "asset": "USDT",
        "walletBalance": num(wallet),
        "unrealizedProfit": num(pnl),
        "marginBalance": num(wallet + pnl),
        "maintMargin": "0",
        "initialMargin": num(margin),
        "positionInitialMargin": num(margin),
        "openOrderInitialMargin": "0",
        "crossWalletBalance": num(wallet),
        "crossUnPnl": num(pnl),
        "availableBalance": num(wallet + pnl - margin),
        "maxWithdrawAmount": num(wallet - margin),
        "updateTime": fake.clock.now_ms(),
    }
    return FakeResponse(
        200,
        {
            "totalWalletBalance": num(wallet),
            "totalUnrealizedProfit": num(pnl),
            "totalMarginBalance": num(wallet + pnl),
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "assets": [asset],
            "positions": [],
        },
    )


def brackets(fake: FakeExchange, request: ExchangeRequest) -> FakeResponse:
    """GET /fapi/v1/leverageBracket: one bracket per USDT-M market."""
    bracket = {
        "bracket": 1,
        "initialLeverage": 125,
        "notionalCap": 50_000_000,
        "notionalFloor": 0,
        "maintMarginRatio": 0.004,
        "cum": 0.0,
    }
    return FakeResponse(
        200,
        [
            {"symbol": m.market_id, "notionalCoef": 1.0, "brackets": [bracket]}
            for m in fake.markets.values()
            if m.kind == "linear"
        ],
    )


def trade_json(order: FakeOrder, trade: dict[str, Any]) -> dict[str, Any]:
    """One fill of ``order`` as myTrades (spot) or userTrades (USDT-M) lists it."""
    common = {
        "symbol": order.market.market_id,
        "id": trade["id"],
        "orderId": order.order_id,
        "price": num(trade["price"]),
        "qty": num(trade["qty"]),
        "quoteQty": num(trade["price"] * trade["qty"]),
        "commission": num(trade["commission"]),
        "commissionAsset": trade["asset"],
        "time": trade["time"],
    }
    if order.kind == "spot":
        return common | {
            "orderListId": -1,
            "isBuyer": order.side == "BUY",
            "isMaker": False,
            "isBestMatch": True,
        }
    return common | {
        "buyer": order.side == "BUY",
        "maker": False,
        "realizedPnl": "0",
        "side": order.side,
        "positionSide": "BOTH",
    }


def num(value: float) -> str:
    """A Binance decimal string (no exponent)."""
    return format(Decimal(repr(float(value))).normalize(), "f")
