"""Local stand-ins for Binance's REST APIs, spot and USD-M futures, for testing the live ccxt
path.

Real exchanges are not reachable from the test machines, so these serve, on 127.0.0.1, exactly
the endpoints ccxt calls for the executor, with Binance's request signing (HMAC-SHA256 of the
query string or form body, `X-MBX-APIKEY`, `timestamp` within `recvWindow`), its response
shapes and its error codes (`-1022`, `-1021`, HTTP 429 with `Retry-After`, 5xx, and each
market's own order rejections). ccxt's own signing, error mapping and response parsing run for
real against them. Anything else is answered 404, so a test fails loudly if ccxt starts calling
an endpoint a stand-in does not know.

- `BinanceSpotStandIn`, for ccxt's `binance` class: `GET /api/v3/exchangeInfo`,
  `GET /api/v3/time`, `POST|DELETE|GET /api/v3/order`, `GET /api/v3/openOrders`,
  `GET /api/v3/account`, `GET /api/v3/myTrades`. Post-only is `LIMIT_MAKER`; rejections
  `-2010` (duplicate client id, would take, insufficient balance), `-2011`, `-2013`. Balances
  move with fills, fees in USDT.
- `BinanceUsdmStandIn`, for ccxt's `binanceusdm` class (one BTCUSDT perpetual with the real
  one's filters, one-way mode, cross margin at a fixed leverage): `GET /fapi/v1/exchangeInfo`,
  `POST|DELETE|GET /fapi/v1/order`, `GET /fapi/v1/openOrders`, `GET /fapi/v3/account`,
  `GET /fapi/v3/positionRisk` with `GET /fapi/v1/leverageBracket` (ccxt's `fetch_positions`),
  `GET /fapi/v1/userTrades`, and the exchange-side dead-man's switch
  `POST /fapi/v1/countdownCancelAll` (`countdownTime` in ms, 0 disarms, each call replaces the
  symbol's countdown; when one runs out every open order of the symbol is cancelled, as
  Binance does). Post-only is `LIMIT` with `timeInForce=GTX`; rejections `-4116` (duplicate
  client id), `-5022` (post-only would take), `-2019` (margin: the open orders' and the
  position's notional over the leverage above the margin balance, a simplification of
  Binance's rule), `-2011`, `-2013`. A fill moves the position (average entry price),
  realises PnL when it reduces one, and takes its fee from the USDT wallet.

ccxt maps Binance's error codes by the URL's host (`get_exceptions_by_url`); at 127.0.0.1 only
its market-independent table applies, so e.g. USD-M's `-4116` arrives as `ExchangeError`, not
the `InvalidOrder` ccxt gives it from fapi.binance.com.

Both share one order book and matching: orders rest until the test's `fill()` executes part
or all of one, which records a trade as the market's trade endpoint reports it.

`StandInThread` serves a stand-in from an event loop on a thread of its own, for tests whose
clients are other processes or run their own loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

SYMBOL = "BTCUSDT"
BASE, QUOTE = "BTC", "USDT"
TICK, STEP, MIN_NOTIONAL = Decimal("0.01"), Decimal("0.00001"), Decimal("5")
MAKER_FEE = Decimal("0.001")  # spot
TESTNET_API = "https://testnet.binance.vision"
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
OPEN = ("NEW", "PARTIALLY_FILLED")
_FEE_PLACES = Decimal("0.00000001")  # fees as charged: 8 places


@dataclass
class StandInOrder:
    order_id: int
    client_order_id: str
    side: str  # BUY / SELL
    type: str  # LIMIT / LIMIT_MAKER
    price: Decimal
    quantity: Decimal
    time_ms: int
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    status: str = "NEW"
    update_ms: int = 0
    # The order's `selfTradePreventionMode` (the symbol's default when the order names none).
    self_trade_prevention: str = "EXPIRE_MAKER"
    time_in_force: str = "GTC"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass
class Fault:
    status: int
    body: dict | str  # a str goes out as it is (a load balancer's HTML page)
    headers: dict[str, str] = field(default_factory=dict)
    after_processing: bool = False  # the request takes effect, the answer is the fault


class BinanceStandIn:
    """What spot and USD-M share: serving, signing, faults, the order book and its matching.
    A market's class gives its routes, its order and trade shapes, its post-only flag, its
    funds check and how a fill moves the account."""

    ccxt_id: str  # the ccxt class this market is for
    ccxt_symbol: str  # its one market, unified
    maker_fee: Decimal
    # The symbol's filters, as the real one's (models' instrument registry holds them too).
    tick, step, min_notional = TICK, STEP, MIN_NOTIONAL
    duplicate = (-2010, "Duplicate order sent.")
    would_take = (-2010, "Order would immediately match and take.")

    def __init__(self, api_key: str, secret: str, balances: dict[str, Decimal]) -> None:
        self.api_key = api_key
        self._secret = secret.encode()
        self.balances = dict(balances)
        self.orders: dict[int, StandInOrder] = {}
        self.trades: list[dict] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.faults: list[Fault] = []  # answered in turn to the next private requests
        self.book_bid, self.book_ask = Decimal("60000.00"), Decimal("60000.10")
        self._next_order_id = 1000
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self):
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def connections(self) -> int:
        """Open client connections. Once a killed client's are gone, every request it sent
        in full has been logged in `requests`: the data is read before the close."""
        server = self._runner.server if self._runner is not None else None
        return 0 if server is None else len(server.connections)

    def ccxt_urls(self) -> dict:
        """ccxt's sandbox URLs pointed here (a config override for `urls.test`)."""
        raise NotImplementedError

    def ccxt_config(self) -> dict:
        """The ccxt constructor settings for trading here."""
        raise NotImplementedError

    # -- the matching the test drives ----------------------------------------------------------

    def fill(self, client_order_id: str, quantity: Decimal) -> dict:
        order = self.orders_by_client(client_order_id)
        assert order.is_open, order.status
        quantity = min(quantity, order.quantity - order.executed)
        notional = quantity * order.price
        fee = (notional * self.maker_fee).quantize(_FEE_PLACES)
        order.executed += quantity
        order.quote_executed += notional
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        order.update_ms = _now_ms()
        trade = self._trade(order, quantity, notional, fee, len(self.trades) + 1)
        self.trades.append(trade)
        return trade

    def orders_by_client(self, client_order_id: str) -> StandInOrder:
        return next(o for o in self.orders.values() if o.client_order_id == client_order_id)

    def open_orders(self) -> list[str]:
        return [o.client_order_id for o in self.orders.values() if o.is_open]

    # -- HTTP ----------------------------------------------------------------------------------

    def _public_routes(self) -> dict:
        raise NotImplementedError

    def _private_routes(self) -> dict:
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.requests.append((request.method, path))
        handler = self._public_routes().get((request.method, path))
        if handler is not None:
            return _json(handler())
        private = self._private_routes().get((request.method, path))
        if private is None:
            return _json({"code": -1000, "msg": f"stand-in has no {request.method} {path}"}, 404)
        signed = await request.text() if request.method == "POST" else request.query_string
        params, error = self._authenticate(request, signed)
        if error is not None:
            return error
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and not fault.after_processing:
            return _json(fault.body, fault.status, fault.headers)
        try:
            response = private(params)
        except _BinanceError as rejected:
            return _json({"code": rejected.code, "msg": rejected.msg}, 400)
        if fault is not None:
            return _json(fault.body, fault.status, fault.headers)
        return _json(response)

    def _authenticate(self, request: web.Request, signed: str):
        """Binance's SIGNED security: the HMAC of everything before `&signature=`."""
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return {}, _json({"code": -2015, "msg": "Invalid API-key, IP, or permissions."}, 401)
        payload, _, signature = signed.rpartition("&signature=")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return {}, _json({"code": -1022, "msg": "Signature for this request is not valid."},
                             400)
        params = dict(parse_qsl(payload, keep_blank_values=True))
        window = int(params.get("recvWindow", 5000))
        if abs(_now_ms() - int(params.get("timestamp", 0))) > window:
            return {}, _json({"code": -1021, "msg": "Timestamp for this request is outside of "
                              "the recvWindow."}, 400)
        return params, None

    # -- the order endpoints, shaped by the market's class -------------------------------------

    def _post_only(self, params: dict) -> bool:
        """Whether the order is post-only; raises for an order type the market refuses."""
        raise NotImplementedError

    def _check_funds(self, side: str, price: Decimal, quantity: Decimal) -> None:
        raise NotImplementedError

    def _order_json(self, order: StandInOrder) -> dict:
        raise NotImplementedError

    def _trade(self, order: StandInOrder, quantity: Decimal, notional: Decimal, fee: Decimal,
               trade_id: int) -> dict:
        """Move the account by the fill; the trade as the market reports it."""
        raise NotImplementedError

    def _new_order(self, params: dict) -> dict:
        if params.get("symbol") != SYMBOL:
            raise _BinanceError(-1121, "Invalid symbol.")
        side, kind = params["side"], params["type"]
        post_only = self._post_only(params)
        price, quantity = Decimal(params["price"]), Decimal(params["quantity"])
        if price % self.tick or quantity % self.step:
            raise _BinanceError(-1013, "Filter failure: PRICE_FILTER or LOT_SIZE")
        if price * quantity < self.min_notional:
            raise _BinanceError(-1013, "Filter failure: NOTIONAL")
        client_order_id = params.get("newClientOrderId") or f"standin{self._next_order_id}"
        if any(o.client_order_id == client_order_id and o.is_open for o in self.orders.values()):
            raise _BinanceError(*self.duplicate)
        crosses = price >= self.book_ask if side == "BUY" else price <= self.book_bid
        if post_only and crosses:
            raise _BinanceError(*self.would_take)
        stp = params.get("selfTradePreventionMode", "EXPIRE_MAKER")
        if stp not in STP_MODES:
            raise _BinanceError(-1130, "Invalid data sent for a parameter.")
        self._check_funds(side, price, quantity)
        self._next_order_id += 1
        order = StandInOrder(self._next_order_id, client_order_id, side, kind, price, quantity,
                             _now_ms(), self_trade_prevention=stp,
                             time_in_force=params.get("timeInForce", "GTC"))
        self.orders[order.order_id] = order
        return self._created_json(order)

    def _created_json(self, order: StandInOrder) -> dict:
        return self._order_json(order)

    def _find(self, params: dict, missing: _BinanceError) -> StandInOrder:
        client_order_id = params.get("origClientOrderId")
        for order in self.orders.values():
            if (client_order_id is not None and order.client_order_id == client_order_id) or (
                str(order.order_id) == params.get("orderId")
            ):
                return order
        raise missing

    def _cancel_order(self, params: dict) -> dict:
        order = self._find(params, _BinanceError(-2011, "Unknown order sent."))
        if not order.is_open:
            raise _BinanceError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_ms = _now_ms()
        return self._cancelled_json(order)

    def _cancelled_json(self, order: StandInOrder) -> dict:
        return self._order_json(order)

    def _query_order(self, params: dict) -> dict:
        return self._order_json(self._find(params, _BinanceError(-2013, "Order does not exist.")))

    def _open_orders(self, params: dict) -> list[dict]:
        return [self._order_json(o) for o in self.orders.values() if o.is_open]

    def _my_trades(self, params: dict) -> list[dict]:
        since = int(params.get("startTime", 0))
        until = int(params.get("endTime", 2**63))
        return [t for t in self.trades if since <= t["time"] <= until]


class BinanceSpotStandIn(BinanceStandIn):
    """Binance spot, for ccxt's `binance` class; `balances` by asset, e.g. BTC and USDT."""

    ccxt_id, ccxt_symbol = "binance", "BTC/USDT"
    maker_fee = MAKER_FEE

    def ccxt_urls(self) -> dict:
        """ccxt's sandbox URLs pointed here (a config override for `urls.test`)."""
        return {"test": {
            "public": f"{self.url}/api/v3", "private": f"{self.url}/api/v3",
            "v1": f"{self.url}/api/v1",
        }}

    def ccxt_config(self) -> dict:
        """ccxt `binance` config for a sandbox pointed here, spot markets only: the stand-in
        is Binance spot, so ccxt must not load the futures markets too."""
        return {"urls": self.ccxt_urls(), "options": {"fetchMarkets": {"types": ["spot"]}}}

    def _public_routes(self) -> dict:
        return {("GET", "/api/v3/exchangeInfo"): self._exchange_info,
                ("GET", "/api/v3/time"): self._time}

    def _private_routes(self) -> dict:
        return {
            ("POST", "/api/v3/order"): self._new_order,
            ("DELETE", "/api/v3/order"): self._cancel_order,
            ("GET", "/api/v3/order"): self._query_order,
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/account"): self._account,
            ("GET", "/api/v3/myTrades"): self._my_trades,
        }

    def _time(self) -> dict:
        return {"serverTime": _now_ms()}

    def _exchange_info(self) -> dict:
        return {
            "timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [{
                "symbol": SYMBOL, "status": "TRADING", "baseAsset": BASE,
                "baseAssetPrecision": 8, "quoteAsset": QUOTE, "quotePrecision": 8,
                "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                               "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
                "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                     "maxPrice": "1000000.00000000", "tickSize": f"{TICK:.8f}"},
                    {"filterType": "LOT_SIZE", "minQty": f"{STEP:.8f}",
                     "maxQty": "9000.00000000", "stepSize": f"{STEP:.8f}"},
                    {"filterType": "NOTIONAL", "minNotional": f"{MIN_NOTIONAL:.8f}",
                     "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                     "applyMaxToMarket": False, "avgPriceMins": 5},
                ],
                "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": list(STP_MODES),
            }],
        }

    def _post_only(self, params: dict) -> bool:
        kind = params["type"]
        if kind not in ("LIMIT", "LIMIT_MAKER"):
            raise _BinanceError(-1013, f"stand-in takes LIMIT and LIMIT_MAKER, not {kind}")
        return kind == "LIMIT_MAKER"

    def _check_funds(self, side: str, price: Decimal, quantity: Decimal) -> None:
        held = price * quantity * (1 + MAKER_FEE) if side == "BUY" else quantity
        if held > self._free(QUOTE if side == "BUY" else BASE):
            raise _BinanceError(-2010, "Account has insufficient balance for requested action.")

    def _order_json(self, order: StandInOrder) -> dict:
        return {
            "symbol": SYMBOL, "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "price": f"{order.price:.8f}",
            "origQty": f"{order.quantity:.8f}", "executedQty": f"{order.executed:.8f}",
            "cummulativeQuoteQty": f"{order.quote_executed:.8f}", "status": order.status,
            "timeInForce": "GTC", "type": order.type, "side": order.side,
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": order.time_ms,
            "updateTime": order.update_ms or order.time_ms, "isWorking": True,
            "workingTime": order.time_ms, "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": order.self_trade_prevention,
        }

    def _created_json(self, order: StandInOrder) -> dict:
        return {**self._order_json(order), "transactTime": order.time_ms, "fills": []}

    def _cancelled_json(self, order: StandInOrder) -> dict:
        # Spot answers a cancel with the cancel request's own client id.
        return {**self._order_json(order), "origClientOrderId": order.client_order_id,
                "clientOrderId": f"cancel{order.order_id}", "transactTime": order.update_ms}

    def _trade(self, order: StandInOrder, quantity: Decimal, notional: Decimal, fee: Decimal,
               trade_id: int) -> dict:
        buy = order.side == "BUY"
        self.balances[BASE] += quantity if buy else -quantity
        self.balances[QUOTE] += -notional - fee if buy else notional - fee
        return {
            "symbol": SYMBOL, "id": trade_id, "orderId": order.order_id,
            "orderListId": -1, "price": f"{order.price:.8f}", "qty": f"{quantity:.8f}",
            "quoteQty": f"{notional:.8f}", "commission": f"{fee:.8f}",
            "commissionAsset": QUOTE, "time": order.update_ms, "isBuyer": buy, "isMaker": True,
            "isBestMatch": True,
        }

    def _free(self, asset: str) -> Decimal:
        held = Decimal(0)
        for o in self.orders.values():
            if not o.is_open:
                continue
            left = o.quantity - o.executed
            if o.side == "BUY" and asset == QUOTE:
                held += left * o.price * (1 + MAKER_FEE)
            elif o.side == "SELL" and asset == BASE:
                held += left
        return self.balances.get(asset, Decimal(0)) - held

    def _account(self, params: dict) -> dict:
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
            "sellerCommission": 0, "canTrade": True, "canWithdraw": True, "canDeposit": True,
            "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": _now_ms(), "accountType": "SPOT", "permissions": ["SPOT"],
            "balances": [
                {"asset": asset, "free": f"{self._free(asset):.8f}",
                 "locked": f"{total - self._free(asset):.8f}"}
                for asset, total in sorted(self.balances.items())
            ],
            "uid": 1,
        }


class BinanceUsdmStandIn(BinanceStandIn):
    """Binance USD-M futures, for ccxt's `binanceusdm` class; `balances` is the margin
    wallet, e.g. {"USDT": 100000}. Its dead-man's switch: `countdowns` (symbol -> the timer
    that cancels its open orders), `countdown_calls` (every arming, in order) and
    `countdown_cancels` (the client ids a countdown cancelled)."""

    ccxt_id, ccxt_symbol = "binanceusdm", "BTC/USDT:USDT"
    maker_fee = Decimal("0.0002")  # VIP 0
    tick, step, min_notional = Decimal("0.10"), Decimal("0.001"), Decimal("100")
    leverage = 20
    duplicate = (-4116, "ClientOrderId is duplicated.")
    would_take = (-5022, "Due to the order could not be executed as maker, the Post Only "
                         "order will be rejected. The order will not be recorded in the "
                         "order history")

    def __init__(self, api_key: str, secret: str, balances: dict[str, Decimal]) -> None:
        super().__init__(api_key, secret, balances)
        self.position = Decimal(0)  # BTC, signed (one-way mode)
        self.entry_price = Decimal(0)
        self.countdowns: dict[str, asyncio.TimerHandle] = {}
        self.countdown_calls: list[tuple[str, int]] = []  # (symbol, countdownTime ms)
        self.countdown_cancels: list[str] = []  # client ids cancelled by a countdown

    async def __aexit__(self, *exc: object) -> None:
        for timer in self.countdowns.values():
            timer.cancel()
        await super().__aexit__(*exc)

    def ccxt_urls(self) -> dict:
        """ccxt `binanceusdm`'s sandbox URLs pointed here (a config override for
        `urls.test`): every USD-M API version it signs for, so none goes to the testnet."""
        return {"test": {
            f"fapi{access}{version}": f"{self.url}/fapi/v{number}"
            for access in ("Public", "Private")
            for version, number in (("", 1), ("V2", 2), ("V3", 3))
        }}

    def ccxt_config(self) -> dict:
        return {"urls": self.ccxt_urls()}

    def _public_routes(self) -> dict:
        return {("GET", "/fapi/v1/exchangeInfo"): self._exchange_info}

    def _private_routes(self) -> dict:
        return {
            ("POST", "/fapi/v1/order"): self._new_order,
            ("DELETE", "/fapi/v1/order"): self._cancel_order,
            ("GET", "/fapi/v1/order"): self._query_order,
            ("GET", "/fapi/v1/openOrders"): self._open_orders,
            ("GET", "/fapi/v3/account"): self._account,
            ("GET", "/fapi/v3/positionRisk"): self._position_risk,
            ("GET", "/fapi/v1/leverageBracket"): self._leverage_bracket,
            ("GET", "/fapi/v1/userTrades"): self._my_trades,
            ("POST", "/fapi/v1/countdownCancelAll"): self._countdown_cancel_all,
        }

    def _exchange_info(self) -> dict:
        return {
            "timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 2400},
            ],
            "exchangeFilters": [], "assets": [{"asset": QUOTE, "marginAvailable": True}],
            "symbols": [{
                "symbol": SYMBOL, "pair": SYMBOL, "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000, "onboardDate": 1569398400000,
                "status": "TRADING", "baseAsset": BASE, "quoteAsset": QUOTE,
                "marginAsset": QUOTE, "pricePrecision": 2, "quantityPrecision": 3,
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "settlePlan": 0, "triggerProtect": "0.0500",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "261.10", "maxPrice": "809484",
                     "tickSize": str(self.tick)},
                    {"filterType": "LOT_SIZE", "minQty": str(self.step), "maxQty": "1000",
                     "stepSize": str(self.step)},
                    {"filterType": "MIN_NOTIONAL", "notional": str(self.min_notional)},
                ],
                "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }],
        }

    # -- the dead-man's switch -----------------------------------------------------------------

    def _countdown_cancel_all(self, params: dict) -> dict:
        """Arm (or with 0 disarm) the symbol's countdown, replacing the last."""
        symbol = params.get("symbol")
        if symbol != SYMBOL:
            raise _BinanceError(-1121, "Invalid symbol.")
        countdown_ms = int(params["countdownTime"])
        self.countdown_calls.append((symbol, countdown_ms))
        previous = self.countdowns.pop(symbol, None)
        if previous is not None:
            previous.cancel()
        if countdown_ms > 0:
            self.countdowns[symbol] = asyncio.get_running_loop().call_later(
                countdown_ms / 1000, self._countdown_expired, symbol)
        return {"symbol": symbol, "countdownTime": str(countdown_ms)}

    def _countdown_expired(self, symbol: str) -> None:
        self.countdowns.pop(symbol, None)
        for order in self.orders.values():
            if order.is_open:
                order.status = "CANCELED"
                order.update_ms = _now_ms()
                self.countdown_cancels.append(order.client_order_id)

    # -- orders and the account ----------------------------------------------------------------

    def _post_only(self, params: dict) -> bool:
        kind, time_in_force = params["type"], params.get("timeInForce", "GTC")
        if kind != "LIMIT":
            raise _BinanceError(-1116, f"Invalid orderType: the stand-in takes LIMIT, not {kind}")
        if time_in_force not in ("GTC", "GTX"):
            raise _BinanceError(-1115, f"Invalid timeInForce: the stand-in takes GTC and GTX, "
                                       f"not {time_in_force}")
        return time_in_force == "GTX"

    def _mark(self) -> Decimal:
        return (self.book_bid + self.book_ask) / 2

    def _margin_balance(self) -> Decimal:
        return self.balances.get(QUOTE, Decimal(0)) + (self._mark() - self.entry_price) * (
            self.position)

    def _initial_margin(self, extra_notional: Decimal = Decimal(0)) -> tuple[Decimal, Decimal]:
        """(the position's, the open orders') initial margin."""
        orders = sum(((o.quantity - o.executed) * o.price for o in self.orders.values()
                      if o.is_open), extra_notional)
        return abs(self.position) * self._mark() / self.leverage, orders / self.leverage

    def _check_funds(self, side: str, price: Decimal, quantity: Decimal) -> None:
        if sum(self._initial_margin(price * quantity)) > self._margin_balance():
            raise _BinanceError(-2019, "Margin is insufficient.")

    def _order_json(self, order: StandInOrder) -> dict:
        average = order.quote_executed / order.executed if order.executed else Decimal(0)
        return {
            "orderId": order.order_id, "symbol": SYMBOL, "status": order.status,
            "clientOrderId": order.client_order_id, "price": str(order.price),
            "avgPrice": str(average), "origQty": str(order.quantity),
            "executedQty": str(order.executed), "cumQty": str(order.executed),
            "cumQuote": str(order.quote_executed), "timeInForce": order.time_in_force,
            "type": order.type, "reduceOnly": False, "closePosition": False,
            "side": order.side, "positionSide": "BOTH", "stopPrice": "0",
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": order.type,
            "priceMatch": "NONE", "selfTradePreventionMode": order.self_trade_prevention,
            "goodTillDate": 0, "time": order.time_ms,
            "updateTime": order.update_ms or order.time_ms,
        }

    def _trade(self, order: StandInOrder, quantity: Decimal, notional: Decimal, fee: Decimal,
               trade_id: int) -> dict:
        signed = quantity if order.side == "BUY" else -quantity
        realised = Decimal(0)
        if self.position and (self.position > 0) != (signed > 0):  # reduces the position
            closed = min(abs(signed), abs(self.position))
            direction = 1 if self.position > 0 else -1
            realised = (order.price - self.entry_price) * closed * direction
        after = self.position + signed
        if not after:
            self.entry_price = Decimal(0)
        elif (after > 0) != (self.position > 0) or not self.position:  # opened or flipped
            self.entry_price = order.price
        elif abs(after) > abs(self.position):  # added to it: the average entry
            self.entry_price = (self.entry_price * abs(self.position) + notional) / abs(after)
        self.position = after
        self.balances[QUOTE] = self.balances.get(QUOTE, Decimal(0)) + realised - fee
        return {
            "symbol": SYMBOL, "id": trade_id, "orderId": order.order_id,
            "side": order.side, "positionSide": "BOTH", "price": str(order.price),
            "qty": str(quantity), "quoteQty": str(notional), "realizedPnl": str(realised),
            "commission": str(fee), "commissionAsset": QUOTE, "time": order.update_ms,
            "buyer": order.side == "BUY", "maker": True,
        }

    def _account(self, params: dict) -> dict:
        now = _now_ms()
        position_margin, order_margin = self._initial_margin()
        wallet = self.balances.get(QUOTE, Decimal(0))
        margin = self._margin_balance()
        unrealised = margin - wallet
        available = margin - position_margin - order_margin
        return {
            "totalInitialMargin": str(position_margin + order_margin),
            "totalMaintMargin": "0", "totalWalletBalance": str(wallet),
            "totalUnrealizedProfit": str(unrealised), "totalMarginBalance": str(margin),
            "totalPositionInitialMargin": str(position_margin),
            "totalOpenOrderInitialMargin": str(order_margin), "totalCrossWalletBalance":
            str(wallet), "totalCrossUnPnl": str(unrealised), "availableBalance": str(available),
            "maxWithdrawAmount": str(available),
            "assets": [{
                "asset": QUOTE, "walletBalance": str(wallet),
                "unrealizedProfit": str(unrealised), "marginBalance": str(margin),
                "maintMargin": "0", "initialMargin": str(position_margin + order_margin),
                "positionInitialMargin": str(position_margin),
                "openOrderInitialMargin": str(order_margin), "crossWalletBalance": str(wallet),
                "crossUnPnl": str(unrealised), "availableBalance": str(available),
                "maxWithdrawAmount": str(available), "updateTime": now,
            }],
            "positions": [] if not self.position else [{
                "symbol": SYMBOL, "positionSide": "BOTH", "positionAmt": str(self.position),
                "unrealizedProfit": str(unrealised), "isolatedMargin": "0",
                "notional": str(self.position * self._mark()), "isolatedWallet": "0",
                "initialMargin": str(position_margin), "maintMargin": "0", "updateTime": now,
            }],
        }

    def _position_risk(self, params: dict) -> list[dict]:
        """The open position (v3 lists only symbols with one), as ccxt's `fetch_positions`
        asks for it by default."""
        if not self.position:
            return []
        position_margin, order_margin = self._initial_margin()
        return [{
            "symbol": SYMBOL, "positionSide": "BOTH", "positionAmt": str(self.position),
            "entryPrice": str(self.entry_price), "breakEvenPrice": str(self.entry_price),
            "markPrice": str(self._mark()),
            "unRealizedProfit": str(self._margin_balance() - self.balances.get(QUOTE, 0)),
            "liquidationPrice": "0", "isolatedMargin": "0",
            "notional": str(self.position * self._mark()), "marginAsset": QUOTE,
            "isolatedWallet": "0", "initialMargin": str(position_margin + order_margin),
            "maintMargin": "0", "positionInitialMargin": str(position_margin),
            "openOrderInitialMargin": str(order_margin), "adl": 0, "bidNotional": "0",
            "askNotional": "0", "updateTime": _now_ms(),
        }]

    def _leverage_bracket(self, params: dict) -> list[dict]:
        """The symbol's first notional bracket (ccxt loads them before reading positions)."""
        return [{"symbol": SYMBOL, "brackets": [{
            "bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
            "maintMarginRatio": 0.004, "cum": 0.0,
        }]}]


class _BinanceError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None):
    if isinstance(body, str):
        return web.Response(text=body, status=status, headers=headers, content_type="text/html")
    return web.Response(text=json.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class StandInThread:
    """A stand-in serving from an event loop on a thread of its own, from construction until
    `close()` (or the end of a `with` block, which gives the stand-in): it outlives every
    executor process a test starts and kills, and answers beside a caller's own loop (a
    FastAPI test client's). `make` builds it, e.g. `lambda: BinanceSpotStandIn(key, secret,
    balances)`. Its state is the loop's: read or change it through `call` or `read`."""

    def __init__(self, make: Callable[[], BinanceStandIn]) -> None:
        self._make = make
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.standin = self.call(self._open)

    async def _open(self) -> BinanceStandIn:
        return await self._make().__aenter__()

    def call(self, coroutine_function, *args):
        """Run `coroutine_function(*args)` on the stand-in's loop; its result."""
        return asyncio.run_coroutine_threadsafe(coroutine_function(*args), self.loop).result(30)

    def read(self, function):
        """`function(standin)` run on the stand-in's loop, so every reading is consistent (and
        a countdown due by then has fired)."""
        async def on_loop():
            return function(self.standin)
        return self.call(on_loop)

    def close(self) -> None:
        self.call(self.standin.__aexit__, None, None, None)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self) -> BinanceStandIn:
        return self.standin

    def __exit__(self, *exc: object) -> None:
        self.close()
