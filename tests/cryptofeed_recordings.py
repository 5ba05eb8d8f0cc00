"""Constructed cryptofeed raw-data recordings, for exchanges /work/shared/data has none of.

`RecordingWriter` writes the files cryptofeed's recorder (`AsyncFileCallback`) writes:
`NAME.0` (configuration and start-up REST calls), `NAME.http.0.0` (REST calls while running),
`NAME.ws.N.0` (one websocket session each). `MarketWalk` makes a book that moves a tick at a
time and never crosses, with trades at the touch: the messages each exchange module builds from
it follow that exchange's documented websocket format, so cryptofeed's own parser reads them as
it reads live traffic. The data are constructed samples, not recordings of a real market.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path


def _ts(seconds: Decimal) -> str:
    return f"{seconds:.6f}"


class RecordingWriter:
    def __init__(self, directory: Path, name: str, configuration: dict, start: Decimal) -> None:
        self.directory = directory
        self.name = name
        self.now = start
        self._startup = [f"configuration: {json.dumps(configuration)}"]
        self._http: list[str] = []
        self._sessions: dict[int, list[str]] = {}

    def tick(self, seconds: str = "0.05") -> str:
        self.now += Decimal(seconds)
        return _ts(self.now)

    def startup_rest(self, url: str, body) -> None:
        self._startup.append(f"{url} -> {self.tick()}: {_text(body)}")

    def rest(self, url: str, body) -> None:
        self._http.append(f"{url} -> {self.tick()}: {_text(body)}")

    def connect(self, session: int, address: str) -> None:
        self._sessions[session] = [f"{address} <-> {self.tick()}"]
        self._address = address
        self._session = session

    def sent(self, message) -> None:
        self._sessions[self._session].append(f"{self._address} <- {self.tick()}: {_text(message)}")

    def received(self, message) -> None:
        self._sessions[self._session].append(f"{self.tick()}: {_text(message)}")

    def close(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"{self.name}.0").write_text("\n".join(self._startup) + "\n")
        if self._http:
            (self.directory / f"{self.name}.http.0.0").write_text("\n".join(self._http) + "\n")
        for session, lines in self._sessions.items():
            path = self.directory / f"{self.name}.ws.{session}.0"
            path.write_text("\n".join(lines) + "\n")
        return self.directory


def _text(body) -> str:
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))


@dataclass
class MarketWalk:
    """A book of `depth` levels a side around a mid that moves a tick per step."""

    mid: Decimal
    tick: Decimal
    depth: int = 5
    seed: int = 7
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.bids, self.asks = self._levels()

    def _size(self) -> Decimal:
        return Decimal(self._random.randint(1, 5000)) / 1000

    def _levels(self) -> tuple[dict, dict]:
        bids = {self.mid - self.tick * k: self._size() for k in range(1, self.depth + 1)}
        asks = {self.mid + self.tick * k: self._size() for k in range(1, self.depth + 1)}
        return bids, asks

    def step(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Move the mid; the (price, size) changes per side, size 0 removing a level."""
        self.mid += self.tick * self._random.choice((-1, 1))
        bids, asks = self._levels()
        changes = []
        for old, new in ((self.bids, bids), (self.asks, asks)):
            changed = [(p, s) for p, s in new.items()]
            changed += [(p, Decimal(0)) for p in old if p not in new]
            changes.append(sorted(changed))
        self.bids, self.asks = bids, asks
        return changes[0], changes[1]

    def touch(self) -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]:
        bid = max(self.bids)
        ask = min(self.asks)
        return (bid, self.bids[bid]), (ask, self.asks[ask])


def strings(levels) -> list[list[str]]:
    return [[str(price), str(size)] for price, size in levels]


# -- constructed exchanges: Bybit and Gate.io ----------------------------------------------

STEPS = 120
BYBIT_REST = "https://api.bybit.com/v5/market/instruments-info?&category={}&status=Trading&limit=1000"
GATEIO_BOOK = "https://api.gateio.ws/api/v4/spot/order_book?currency_pair={}&limit=100&with_id=true"


def _ms(writer: RecordingWriter) -> int:
    return int(writer.now * 1000)


def bybit_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """A linear perpetual on Bybit's linear socket (with tickers) and a spot pair on its spot
    socket: two websocket sessions, parsed differently by cryptofeed by their address."""
    writer = RecordingWriter(directory, "BYBIT", {
        "l2_book": ["BTC-USDT-PERP", "ETH-USDT"],
        "trades": ["BTC-USDT-PERP", "ETH-USDT"],
        "ticker": ["BTC-USDT-PERP"],
    }, Decimal("1700000000"))
    writer.startup_rest(BYBIT_REST.format("linear"), {
        "retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": [
            {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading",
             "baseCoin": "BTC", "quoteCoin": "USDT", "settleCoin": "USDT",
             "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
             "lotSizeFilter": {"maxOrderQty": "100.000", "minOrderQty": "0.001",
                               "qtyStep": "0.001"}},
        ]}, "retExtInfo": {}, "time": 1700000000000})
    writer.startup_rest(BYBIT_REST.format("spot"), {
        "retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
            {"symbol": "ETHUSDT", "baseCoin": "ETH", "quoteCoin": "USDT", "status": "Trading",
             "priceFilter": {"tickSize": "0.01"},
             "lotSizeFilter": {"basePrecision": "0.00001", "minOrderQty": "0.00062"}},
        ]}, "retExtInfo": {}, "time": 1700000000000})
    walks = {"BTC/USDT:USDT": MarketWalk(Decimal("60000.0"), Decimal("0.1"), seed=1),
             "ETH/USDT": MarketWalk(Decimal("2500.00"), Decimal("0.01"), seed=2)}
    sockets = ((1, "linear", "BTCUSDT", walks["BTC/USDT:USDT"]),
               (2, "spot", "ETHUSDT", walks["ETH/USDT"]))
    for session, market, symbol, walk in sockets:
        writer.connect(session, f"wss://stream.bybit.com/v5/public/{market}")
        topics = [f"orderbook.200.{symbol}", f"publicTrade.{symbol}"]
        if market == "linear":
            topics.insert(0, f"tickers.{symbol}")
        for topic in topics:
            writer.sent({"op": "subscribe", "args": [topic]})
        for _ in topics:
            writer.received({"success": True, "ret_msg": "", "conn_id": "c0", "op": "subscribe"})
        bids, asks = sorted(walk.bids.items(), reverse=True), sorted(walk.asks.items())
        writer.received({"topic": f"orderbook.200.{symbol}", "type": "snapshot",
                         "ts": _ms(writer) + 1, "data": {"s": symbol, "b": strings(bids),
                         "a": strings(asks), "u": 1, "seq": 1000}, "cts": _ms(writer)})
        for step in range(STEPS):
            bid_changes, ask_changes = walk.step()
            writer.received({"topic": f"orderbook.200.{symbol}", "type": "delta",
                             "ts": _ms(writer) + 1, "data": {"s": symbol,
                             "b": strings(bid_changes), "a": strings(ask_changes),
                             "u": step + 2, "seq": 1001 + step}, "cts": _ms(writer)})
            (bid, bid_size), (ask, ask_size) = walk.touch()
            if step % 3 == 0:
                buy = step % 2 == 0
                writer.received({"topic": f"publicTrade.{symbol}", "type": "snapshot",
                                 "ts": _ms(writer) + 1, "data": [{
                                     "T": _ms(writer), "s": symbol, "S": "Buy" if buy else "Sell",
                                     "v": "0.001", "p": str(ask if buy else bid),
                                     "L": "PlusTick", "i": f"{symbol}-{step}", "BT": False}]})
            if market == "linear" and step % 4 == 0:
                ticker = {"symbol": symbol, "bid1Price": str(bid), "bid1Size": str(bid_size),
                          "ask1Price": str(ask), "ask1Size": str(ask_size)}
                if step == 0:
                    ticker |= {"lastPrice": str(ask), "markPrice": str(walk.mid),
                               "fundingRate": "0.0001", "nextFundingTime": "1700006400000"}
                writer.received({"topic": f"tickers.{symbol}",
                                 "type": "snapshot" if step == 0 else "delta",
                                 "data": ticker, "cs": 24987956059 + step, "ts": _ms(writer)})
    return writer.close(), walks


def gateio_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """Gate.io spot: diffs sequenced by U/u against a REST snapshot cryptofeed fetches at the
    first diff (it checks the ids itself), and tickers without sizes (not consumed)."""
    writer = RecordingWriter(directory, "GATEIO", {
        "l2_book": ["BTC-USDT"], "trades": ["BTC-USDT"], "ticker": ["BTC-USDT"],
    }, Decimal("1700000000"))
    writer.startup_rest("https://api.gateio.ws/api/v4/spot/currency_pairs", [
        {"id": "BTC_USDT", "base": "BTC", "quote": "USDT", "fee": "0.2",
         "min_base_amount": "0.00001", "min_quote_amount": "3", "amount_precision": 6,
         "precision": 1, "trade_status": "tradable", "sell_start": 0, "buy_start": 0},
        {"id": "DOGE_USDT", "base": "DOGE", "quote": "USDT", "fee": "0.2",
         "amount_precision": 2, "precision": 6, "trade_status": "untradable"},
    ])
    walk = MarketWalk(Decimal("37000.0"), Decimal("0.1"), seed=3)
    writer.connect(1, "wss://api.gateio.ws/ws/v4/")
    for channel, payload in (("spot.order_book_update", ["BTC_USDT", "100ms"]),
                             ("spot.trades", ["BTC_USDT"]), ("spot.tickers", ["BTC_USDT"])):
        writer.sent({"time": 1700000000, "channel": channel, "event": "subscribe",
                     "payload": payload})
        writer.received({"time": 1700000000, "time_ms": _ms(writer), "channel": channel,
                         "event": "subscribe", "payload": payload,
                         "result": {"status": "success"}})
    snapshot_id = 5000
    # The first diff (ids 4996-4998) makes cryptofeed fetch the snapshot (id 5000, the book
    # after that diff) and is older than it; the second (4999-5001) bridges it.
    for step in range(STEPS):
        first = snapshot_id - 4 + 3 * step
        bid_changes, ask_changes = walk.step()
        if step == 0:
            writer.rest(GATEIO_BOOK.format("BTC_USDT"), {
                "id": snapshot_id, "current": _ms(writer), "update": _ms(writer),
                "bids": strings(sorted(walk.bids.items(), reverse=True)),
                "asks": strings(sorted(walk.asks.items()))})
        writer.received({"time": int(writer.now), "time_ms": _ms(writer),
                         "channel": "spot.order_book_update", "event": "update", "result": {
                             "t": _ms(writer), "e": "depthUpdate", "E": int(writer.now),
                             "s": "BTC_USDT", "U": first, "u": first + 2,
                             "b": strings(bid_changes), "a": strings(ask_changes)}})
        (bid, _), (ask, _) = walk.touch()
        if step % 3 == 1:
            writer.received({"time": int(writer.now), "time_ms": _ms(writer),
                             "channel": "spot.trades", "event": "update", "result": {
                                 "id": 309143071 + step, "create_time": int(writer.now),
                                 "create_time_ms": f"{_ms(writer)}.123", "side": "sell",
                                 "currency_pair": "BTC_USDT", "amount": "0.0042",
                                 "price": str(bid)}})
        if step % 5 == 0:
            writer.received({"time": int(writer.now), "time_ms": _ms(writer),
                             "channel": "spot.tickers", "event": "update", "result": {
                                 "currency_pair": "BTC_USDT", "last": str(bid),
                                 "lowest_ask": str(ask), "highest_bid": str(bid),
                                 "change_percentage": "-0.76", "base_volume": "1138.9",
                                 "quote_volume": "63844439.3", "high_24h": "38000",
                                 "low_24h": "36000"}})
    return writer.close(), {"BTC/USDT": walk}


_BITFLYER_MARKETS = [{"product_code": "BTC_JPY", "market_type": "Spot"},
                     {"product_code": "ETH_JPY", "market_type": "Spot"},
                     {"product_code": "FX_BTC_JPY", "market_type": "FX"}]


def _iso(seconds: Decimal) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{int(seconds % 1 * 10**7):07d}Z"  # bitFlyer's 100 ns digits


def bitflyer_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """bitFlyer's JSON-RPC lightstream: board snapshots and diffs with numeric prices, trades
    (`executions`) and tickers whose best sizes sit inside the envelope."""
    writer = RecordingWriter(directory, "BITFLYER", {
        "l2_book": ["BTC-JPY"], "trades": ["BTC-JPY"], "ticker": ["BTC-JPY"],
    }, Decimal("1700000000"))
    for route in ("getmarkets/eu", "getmarkets/usa", "getmarkets", "markets", "markets/usa",
                  "markets/eu"):
        writer.startup_rest(f"https://api.bitflyer.com/v1/{route}", _BITFLYER_MARKETS)
    walk = MarketWalk(Decimal("5860000"), Decimal("1"), seed=4)
    address = "wss://ws.lightstream.bitflyer.com/json-rpc"
    writer.connect(1, address)
    for channel in ("lightning_executions_BTC_JPY", "lightning_ticker_BTC_JPY",
                    "lightning_board_snapshot_BTC_JPY", "lightning_board_BTC_JPY"):
        writer.sent({"method": "subscribe", "params": {"channel": channel}})

    def rpc(channel: str, message) -> dict:
        return {"jsonrpc": "2.0", "method": "channelMessage",
                "params": {"channel": channel, "message": message}}

    def levels(changes) -> list[dict]:
        return [{"price": float(p), "size": float(s)} for p, s in changes]

    # A diff before the first snapshot: cryptofeed ignores it, as bitFlyer documents.
    bid_changes, ask_changes = walk.step()
    writer.received(rpc("lightning_board_BTC_JPY", {"mid_price": float(walk.mid),
                        "bids": levels(bid_changes), "asks": levels(ask_changes)}))
    writer.received(rpc("lightning_board_snapshot_BTC_JPY", {
        "mid_price": float(walk.mid),
        "bids": levels(sorted(walk.bids.items(), reverse=True)),
        "asks": levels(sorted(walk.asks.items()))}))
    for step in range(STEPS):
        bid_changes, ask_changes = walk.step()
        writer.received(rpc("lightning_board_BTC_JPY", {"mid_price": float(walk.mid),
                            "bids": levels(bid_changes), "asks": levels(ask_changes)}))
        (bid, bid_size), (ask, ask_size) = walk.touch()
        if step % 3 == 0:
            writer.received(rpc("lightning_executions_BTC_JPY", [{
                "id": 2284079807 + step, "side": "BUY", "price": float(ask), "size": 0.01,
                "exec_date": _iso(writer.now - Decimal("0.1")),
                "buy_child_order_acceptance_id": f"JRF-{step}-b",
                "sell_child_order_acceptance_id": f"JRF-{step}-s"}]))
        if step % 4 == 0:
            writer.received(rpc("lightning_ticker_BTC_JPY", {
                "product_code": "BTC_JPY", "state": "RUNNING",
                "timestamp": _iso(writer.now - Decimal("0.1")), "tick_id": 127090247 + step,
                "best_bid": float(bid), "best_ask": float(ask),
                "best_bid_size": float(bid_size), "best_ask_size": float(ask_size),
                "total_bid_depth": 228.96, "total_ask_depth": 295.47, "market_bid_size": 0.0,
                "market_ask_size": 0.0, "ltp": float(ask), "volume": 4226.35,
                "volume_by_product": 4226.35}))
    return writer.close(), {"BTC/JPY": walk}


def kucoin_recording(directory: Path, *, cryptofeed_1: bool = False
                     ) -> tuple[Path, dict[str, MarketWalk]]:
    """KuCoin: the websocket address from a POSTed token, level2 diffs sequenced against a
    signed REST snapshot that cryptofeed fetches at the first diff, matches and tickers.

    `cryptofeed_1`: as cryptofeed 1.x recorded KuCoin in 2021: snapshots from the since
    retired `/api/v2/...` address, and a pair whose exchange symbol is not cryptofeed's
    (`BCHSV-USDT`, base currency BSV), which cryptofeed 2.4 passes through to its callbacks."""
    pair, base = ("BCHSV-USDT", "BSV") if cryptofeed_1 else ("BTC-USDT", "BTC")
    normalized = f"{base}-USDT"
    writer = RecordingWriter(directory, "KUCOIN", {
        "l2_book": [normalized], "trades": [normalized], "ticker": [normalized],
    }, Decimal("1619378325" if cryptofeed_1 else "1700000000"))
    address = "wss://ws-api-spot.kucoin.com/?token=2neAiuYvAU61ZDXANAGAsiL4"
    writer.startup_rest("https://api.kucoin.com/api/v1/bullet-public", {
        "code": "200000", "data": {"token": "2neAiuYvAU61ZDXANAGAsiL4", "instanceServers": [
            {"endpoint": "wss://ws-api-spot.kucoin.com/", "encrypt": True,
             "protocol": "websocket", "pingInterval": 18000, "pingTimeout": 10000}]}})
    writer.startup_rest("https://api.kucoin.com/api/v1/symbols", {"code": "200000", "data": [
        {"symbol": pair, "name": pair, "baseCurrency": base, "quoteCurrency": "USDT",
         "feeCurrency": "USDT", "market": "USDS", "baseMinSize": "0.00001",
         "quoteMinSize": "0.1", "baseIncrement": "0.00000001", "quoteIncrement": "0.000001",
         "priceIncrement": "0.1", "minFunds": "0.1", "enableTrading": True},
        {"symbol": "OLD-USDT", "name": "OLD-USDT", "baseCurrency": "OLD", "quoteCurrency": "USDT",
         "priceIncrement": "0.0001", "enableTrading": False}]})
    walk = MarketWalk(Decimal("42000.0"), Decimal("0.1"), seed=5)
    sequence = 14103843
    version = "v2" if cryptofeed_1 else "v3"
    writer.rest(f"https://api.kucoin.com/api/{version}/market/orderbook/level2?symbol={pair}", {
        "code": "200000", "data": {"time": _ms(writer), "sequence": str(sequence),
                                   "bids": strings(sorted(walk.bids.items(), reverse=True)),
                                   "asks": strings(sorted(walk.asks.items()))}})
    writer.connect(1, address)
    writer.received({"id": "hQvf8jkno", "type": "welcome"})
    for topic in ("/market/level2", "/market/match", "/market/ticker"):
        writer.sent({"id": 1, "type": "subscribe", "topic": f"{topic}:{pair}",
                     "privateChannel": False, "response": True})
        writer.received({"id": 1, "type": "ack"})
    for step in range(STEPS):
        bid_changes, ask_changes = walk.step()
        end = sequence + len(bid_changes) + len(ask_changes)
        changes = {side: [[p, s, str(end)] for p, s in strings(levels)]
                   for side, levels in (("asks", ask_changes), ("bids", bid_changes))}
        writer.received({"type": "message", "topic": f"/market/level2:{pair}",
                         "subject": "trade.l2update", "data": {
                             "changes": changes, "sequenceStart": sequence + 1,
                             "sequenceEnd": end, "symbol": pair, "time": _ms(writer)}})
        sequence = end
        (bid, bid_size), (ask, ask_size) = walk.touch()
        if step % 3 == 0:
            writer.received({"type": "message", "topic": f"/market/match:{pair}",
                             "subject": "trade.l3match", "data": {
                                 "sequence": str(sequence), "type": "match",
                                 "symbol": pair, "side": "sell", "price": str(bid),
                                 "size": "0.0021", "tradeId": f"5c24c5da03aa6738{step:08d}",
                                 "takerOrderId": "t", "makerOrderId": "m",
                                 "time": str(_ms(writer) * 1_000_000)}})
        if step % 4 == 0:
            writer.received({"type": "message", "topic": f"/market/ticker:{pair}",
                             "subject": "trade.ticker", "data": {
                                 "sequence": str(sequence), "price": str(bid), "size": "0.0021",
                                 "bestAsk": str(ask), "bestAskSize": str(ask_size),
                                 "bestBid": str(bid), "bestBidSize": str(bid_size),
                                 "time": _ms(writer)}})
    return writer.close(), {f"{base}/USDT": walk}


def _deribit_instrument(name: str, quote: str, kind: str, expiry_ms: int, **fields) -> dict:
    return {"tick_size": 0.5 if kind == "future" else 0.0005, "taker_commission": 0.0005,
            "maker_commission": 0.0, "kind": kind, "is_active": True, "instrument_name": name,
            "base_currency": "BTC", "quote_currency": quote, "contract_size": 10.0,
            "min_trade_amount": 10.0, "expiration_timestamp": expiry_ms,
            "creation_timestamp": 1534242287000, **fields}


def deribit_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """Deribit as an older cryptofeed recorded it: instrument lists for BTC and ETH only
    (2.4.1 also asks for USDC and SOL), a perpetual and an option priced in the coin, whose
    cryptofeed symbol names the coin once (`BTC-40000-21U24-call`); books as a snapshot, then
    changes chained by prev_change_id, with `new`/`change`/`delete` actions."""
    writer = RecordingWriter(directory, "DERIBIT", {
        "l2_book": ["BTC-USD-PERP", "BTC-40000-21U24-call"],
        "trades": ["BTC-USD-PERP", "BTC-40000-21U24-call"],
    }, Decimal("1626990000"))
    route = "https://www.deribit.com/api/v2/public/get_instruments?currency={}"
    writer.startup_rest(route.format("BTC"), {"jsonrpc": "2.0", "result": [
        _deribit_instrument("BTC-PERPETUAL", "USD", "future", 32503708800000,
                            settlement_period="perpetual"),
        _deribit_instrument("BTC-24SEP21-40000-C", "BTC", "option", 1632470400000,
                            settlement_period="month", option_type="call", strike=40000.0),
    ], "usIn": 1626990000100000, "usOut": 1626990000100200, "usDiff": 200, "testnet": False})
    writer.startup_rest(route.format("ETH"), {"jsonrpc": "2.0", "result": [], "usIn": 1,
                                              "usOut": 2, "usDiff": 1, "testnet": False})
    walks = {"BTC/USD:BTC": MarketWalk(Decimal("32000.0"), Decimal("0.5"), seed=6),
             "BTC/BTC:BTC-210924-40000-C": MarketWalk(Decimal("0.05"), Decimal("0.0005"),
                                                      seed=8)}
    instruments = {"BTC/USD:BTC": "BTC-PERPETUAL",
                   "BTC/BTC:BTC-210924-40000-C": "BTC-24SEP21-40000-C"}
    writer.connect(1, "wss://www.deribit.com/ws/api/v2")
    channels = [f"{kind}.{name}.raw" for kind in ("book", "trades")
                for name in instruments.values()]
    writer.sent({"jsonrpc": "2.0", "id": "101", "method": "public/subscribe",
                 "params": {"channels": channels}})
    writer.received({"jsonrpc": "2.0", "id": "101", "result": channels, "usIn": 1, "usOut": 2,
                     "usDiff": 1, "testnet": False})

    def publish(channel: str, data) -> None:
        writer.received({"jsonrpc": "2.0", "method": "subscription",
                         "params": {"channel": channel, "data": data}})

    change_ids = dict.fromkeys(instruments.values(), 33195894164)
    for name in instruments.values():
        walk = walks[next(s for s, n in instruments.items() if n == name)]
        publish(f"book.{name}.raw", {
            "type": "snapshot", "timestamp": _ms(writer), "instrument_name": name,
            "change_id": change_ids[name],
            "bids": [["new", float(p), float(s)] for p, s in sorted(walk.bids.items())[::-1]],
            "asks": [["new", float(p), float(s)] for p, s in sorted(walk.asks.items())]})
    for step in range(STEPS):
        for symbol, name in instruments.items():
            walk = walks[symbol]
            old_bids, old_asks = set(walk.bids), set(walk.asks)
            bid_changes, ask_changes = walk.step()

            def actions(changes, old):
                return [["delete" if s == 0 else "change" if p in old else "new",
                         float(p), float(s)] for p, s in changes]

            previous, change_ids[name] = change_ids[name], change_ids[name] + 1 + step % 3
            publish(f"book.{name}.raw", {
                "type": "change", "timestamp": _ms(writer), "prev_change_id": previous,
                "instrument_name": name, "change_id": change_ids[name],
                "bids": actions(bid_changes, old_bids), "asks": actions(ask_changes, old_asks)})
            if step % 3 == 0:
                (bid, _), _ = walk.touch()
                publish(f"trades.{name}.raw", [{
                    "trade_seq": 933 + step, "trade_id": f"{9178 + step}",
                    "timestamp": _ms(writer), "tick_direction": 3, "price": float(bid),
                    "mark_price": float(walk.mid), "instrument_name": name,
                    "index_price": 32000.0, "direction": "sell", "amount": 10.0}])
    return writer.close(), walks


def bitfinex_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """Bitfinex as cryptofeed 1.x recorded it: start-up lists of exchange pairs and currencies
    only (2.4.1 also asks for derivative pairs), channels numbered by `subscribed` events,
    every message carrying the connection's sequence number last (SEQ_ALL); a book snapshot
    of [price, count, amount] rows (asks negative), then one level a message (count 0
    removes), trades as `te` (and `tu`, which cryptofeed skips), heartbeats."""
    writer = RecordingWriter(directory, "BITFINEX", {
        "l2_book": ["BTC-USD"], "trades": ["BTC-USD"],
    }, Decimal("1618677543"))
    writer.startup_rest("https://api-pub.bitfinex.com/v2/conf/pub:list:pair:exchange",
                        [["BTCUSD", "ETHUSD", "TESTBTC:TESTUSD"]])
    writer.startup_rest("https://api-pub.bitfinex.com/v2/conf/pub:list:currency",
                        [["BTC", "ETH", "TESTBTC", "TESTUSD", "USD"]])
    walk = MarketWalk(Decimal("60000"), Decimal("1"), seed=9)
    address = "wss://api.bitfinex.com/ws/2"
    writer.connect(1, address)
    writer.sent({"event": "conf", "flags": 65536})
    writer.sent({"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0",
                 "freq": "F0", "len": "100"})
    writer.sent({"event": "subscribe", "channel": "trades", "symbol": "tBTCUSD"})
    writer.received({"event": "info", "version": 2, "serverId": "083bd8d4", "platform":
                     {"status": 1}})
    writer.received({"event": "conf", "status": "OK", "flags": 65536})
    book, trades, sequence = 232957, 232959, 0

    def numbered(channel: int, *payload) -> None:
        nonlocal sequence
        sequence += 1
        writer.received([channel, *payload, sequence])

    def row(price, size, bid: bool) -> list:
        count = 1 if size else 0
        amount = (size or 1) if bid else -(size or 1)
        return [int(price), count, float(amount)]

    writer.received({"event": "subscribed", "channel": "book", "chanId": book,
                     "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "100",
                     "pair": "BTCUSD"})
    numbered(book, [row(p, s, True) for p, s in sorted(walk.bids.items(), reverse=True)]
             + [row(p, s, False) for p, s in sorted(walk.asks.items())])
    writer.received({"event": "subscribed", "channel": "trades", "chanId": trades,
                     "symbol": "tBTCUSD", "pair": "BTCUSD"})
    numbered(trades, [[669899159, _ms(writer) - 500, 0.01, float(walk.mid)]])
    for step in range(STEPS):
        bid_changes, ask_changes = walk.step()
        for changes, bid in ((bid_changes, True), (ask_changes, False)):
            for price, size in changes:
                numbered(book, row(price, size, bid))
        if step % 3 == 0:
            (bid, _), _ = walk.touch()
            trade = [669899160 + step, _ms(writer), -0.0042, int(bid)]
            numbered(trades, "te", trade)
            numbered(trades, "tu", trade)
        if step % 10 == 0:
            numbered(book, "hb")
    return writer.close(), {"BTC/USD": walk}


def _bitmex_instrument(symbol: str, root: str, typ: str, expiry: str | None, tick: float):
    return {"symbol": symbol, "rootSymbol": root, "state": "Open", "typ": typ, "expiry": expiry,
            "quoteCurrency": "USD", "underlying": root, "tickSize": tick, "lotSize": 1,
            "isQuanto": False, "isInverse": True, "settlCurrency": "XBt"}


def bitmex_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """BitMEX as cryptofeed 1.x recorded it in 2021: its configuration names the perpetual
    XBTUSD `BTC-USD` and the June future ETHM21 `ETH-USD-M21`, where cryptofeed 2.0 and later
    say `BTC-USD-PERP` and `ETH-USD-21M25`. orderBookL2 as a partial, then inserts, updates
    and deletes by level id; trades as inserts."""
    writer = RecordingWriter(directory, "BITMEX", {
        "l2_book": ["BTC-USD", "ETH-USD-M21"], "trades": ["BTC-USD", "ETH-USD-M21"],
    }, Decimal("1618677659"))
    writer.startup_rest("https://www.bitmex.com/api/v1/instrument/active", [
        _bitmex_instrument("XBTUSD", "XBT", "FFWCSX", None, 0.5),
        _bitmex_instrument("ETHM21", "ETH", "FFCCSX", "2021-06-25T12:00:00.000Z", 0.05),
    ])
    walks = {"BTC/USD:BTC": MarketWalk(Decimal("61000.0"), Decimal("0.5"), seed=10),
             "ETH/USD:ETH-210625": MarketWalk(Decimal("2400.00"), Decimal("0.05"), seed=11)}
    instruments = {"BTC/USD:BTC": "XBTUSD", "ETH/USD:ETH-210625": "ETHM21"}
    writer.connect(17, "wss://www.bitmex.com/realtime")
    writer.sent({"op": "subscribe", "args": [f"{table}:{symbol}" for table in
                                             ("trade", "orderBookL2")
                                             for symbol in instruments.values()]})
    writer.received({"info": "Welcome to the BitMEX Realtime API.", "version": "2021-04-15",
                     "timestamp": "2021-04-17T16:41:00.033Z", "limit": {"remaining": 39}})

    def level_id(symbol: str, price: Decimal, tick: Decimal) -> int:
        return 8_800_000_000 * (1 + list(instruments.values()).index(symbol)) - int(price / tick)

    def table(action: str, symbol: str, rows: list[dict]) -> None:
        writer.received({"table": "orderBookL2", "action": action,
                         "data": [{"symbol": symbol, **row} for row in rows]})

    for unified, symbol in instruments.items():
        walk = walks[unified]
        rows = [{"id": level_id(symbol, p, walk.tick), "side": side, "size": int(s * 1000),
                 "price": float(p)}
                for side, levels in (("Sell", walk.asks), ("Buy", walk.bids))
                for p, s in sorted(levels.items(), reverse=True)]
        table("partial", symbol, rows)
    for step in range(STEPS):
        for unified, symbol in instruments.items():
            walk = walks[unified]
            old = {"Buy": set(walk.bids), "Sell": set(walk.asks)}
            bid_changes, ask_changes = walk.step()
            for side, changes in (("Buy", bid_changes), ("Sell", ask_changes)):
                deletes = [{"id": level_id(symbol, p, walk.tick), "side": side}
                           for p, s in changes if s == 0]
                updates = [{"id": level_id(symbol, p, walk.tick), "side": side,
                            "size": int(s * 1000)} for p, s in changes if s and p in old[side]]
                inserts = [{"id": level_id(symbol, p, walk.tick), "side": side,
                            "size": int(s * 1000), "price": float(p)}
                           for p, s in changes if s and p not in old[side]]
                for action, rows in (("delete", deletes), ("update", updates),
                                     ("insert", inserts)):
                    if rows:
                        table(action, symbol, rows)
            if step % 3 == 0:
                (bid, _), _ = walk.touch()
                moment = datetime.fromtimestamp(float(writer.now), UTC)
                writer.received({"table": "trade", "action": "insert", "data": [{
                    "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "symbol": symbol, "side": "Sell", "size": 100, "price": float(bid),
                    "tickDirection": "MinusTick", "trdMatchID": f"06acf016-{step:04d}-{symbol}",
                    "grossValue": 4076520, "homeNotional": 0.1, "foreignNotional": 100}]})
    for walk in walks.values():  # sizes are whole contracts on BitMEX
        walk.bids = {p: Decimal(int(s * 1000)) for p, s in walk.bids.items()}
        walk.asks = {p: Decimal(int(s * 1000)) for p, s in walk.asks.items()}
    return writer.close(), walks


def _gzip_frame(message) -> str:
    """A gzip-compressed websocket frame as cryptofeed's recorder writes any binary frame:
    Python's printed bytes, `b'\\x1f\\x8b...'`."""
    return repr(gzip.compress(_text(message).encode(), mtime=0))


def huobi_swap_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """Huobi's perpetual swaps: every frame gzip-compressed (the recording holds them as Python
    bytes literals), an inverse swap on its swap socket and a linear one on its linear socket,
    each depth message a whole book (`depth.step0`), trades, pings and subscription acks."""
    writer = RecordingWriter(directory, "HUOBI_SWAP", {
        "l2_book": ["BTC-USD-PERP", "ETH-USDT-PERP"], "trades": ["BTC-USD-PERP", "ETH-USDT-PERP"],
    }, Decimal("1645289383"))
    for api, code, size in (("swap-api", "BTC-USD", 100), ("linear-swap-api", "ETH-USDT", 0.01)):
        writer.startup_rest(f"https://api.hbdm.com/{api}/v1/swap_contract_info", {
            "status": "ok", "data": [{
                "symbol": code.split("-")[0], "contract_code": code, "contract_size": size,
                "price_tick": 0.1, "delivery_time": "", "create_date": "20200325",
                "contract_status": 1, "settlement_date": "1645315200000"}],
            "ts": 1645289383000})
    walks = {"BTC/USD:BTC": MarketWalk(Decimal("40000.0"), Decimal("0.1"), seed=12),
             "ETH/USDT:USDT": MarketWalk(Decimal("2900.0"), Decimal("0.1"), seed=13)}
    sockets = ((1, "swap-ws", "BTC-USD", walks["BTC/USD:BTC"]),
               (2, "linear-swap-ws", "ETH-USDT", walks["ETH/USDT:USDT"]))
    for session, path, code, walk in sockets:
        writer.connect(session, f"wss://api.hbdm.com/{path}")
        for number, topic in enumerate((f"market.{code}.trade.detail",
                                        f"market.{code}.depth.step0"), start=1):
            writer.sent({"sub": topic, "id": str(number)})
            writer.received(_gzip_frame({"id": str(number), "status": "ok", "subbed": topic,
                                         "ts": _ms(writer)}))
        for step in range(STEPS):
            if step:
                walk.step()
            writer.received(_gzip_frame({
                "ch": f"market.{code}.depth.step0", "ts": _ms(writer), "tick": {
                    "mrid": 14848858327 + step, "id": int(writer.now),
                    "bids": [[float(p), float(s)] for p, s in sorted(walk.bids.items())[::-1]],
                    "asks": [[float(p), float(s)] for p, s in sorted(walk.asks.items())],
                    "ts": _ms(writer), "version": 1565857755 + step,
                    "ch": f"market.{code}.depth.step0"}}))
            if step % 3 == 0:
                (_, _), (ask, _) = walk.touch()
                writer.received(_gzip_frame({
                    "ch": f"market.{code}.trade.detail", "ts": _ms(writer), "tick": {
                        "id": 100065340982 + step, "ts": _ms(writer), "data": [{
                            "id": f"1000653409822414700{step:04d}", "amount": 2,
                            "price": float(ask), "direction": "buy", "ts": _ms(writer)}]}}))
            if step % 25 == 0:
                writer.received(_gzip_frame({"ping": _ms(writer)}))
    return writer.close(), walks


def bithumb_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """Bithumb as cryptofeed 1.x recorded it: trades (`transaction`, times in Korea's local
    time) and the `orderbookdepth` deltas it subscribed to as well, which cryptofeed 2.4
    deliberately has no book for (no snapshot to build them on). The walk stands for the
    market the trades are made in; no book comes out of this recording."""
    writer = RecordingWriter(directory, "BITHUMB", {"trades": ["BTC-KRW"]},
                             Decimal("1622591001"))
    for quote, bases in (("BTC", ["ETH"]), ("KRW", ["BTC", "ETH"])):
        writer.startup_rest(f"https://api.bithumb.com/public/ticker/ALL_{quote}", {
            "status": "0000", "data": {
                **{base: {"opening_price": "1", "closing_price": "1"} for base in bases},
                "date": "1622591001555"}})
    walk = MarketWalk(Decimal("43000000"), Decimal("1000"), seed=14)
    writer.connect(1, "wss://pubwss.bithumb.com/pub/ws")
    for kind in ("transaction", "orderbookdepth"):
        writer.sent({"type": kind, "symbols": ["BTC_KRW"]})
    writer.received({"status": "0000", "resmsg": "Connected Successfully"})
    writer.received({"status": "0000", "resmsg": "Filter Registered Successfully"})
    for step in range(STEPS):
        bid_changes, ask_changes = walk.step()
        writer.received({"type": "orderbookdepth", "content": {"list": [
            {"symbol": "BTC_KRW", "orderType": side, "price": str(p), "quantity": str(s),
             "total": "1" if s else "0"}
            for side, changes in (("bid", bid_changes), ("ask", ask_changes))
            for p, s in changes], "datetime": str(_ms(writer) * 1000)}})
        if step % 3 == 0:
            (bid, _), _ = walk.touch()
            korea = datetime.fromtimestamp(float(writer.now) + 9 * 3600, UTC)
            writer.received({"type": "transaction", "content": {"list": [{
                "buySellGb": "1", "contPrice": str(bid), "contQty": "0.0042",
                "contAmt": str(bid * Decimal("0.0042")),
                "contDtm": korea.strftime("%Y-%m-%d %H:%M:%S.%f"), "updn": "dn",
                "symbol": "BTC_KRW"}]}})
    return writer.close(), {"BTC/KRW": walk}


def _iso_ms(seconds: Decimal) -> str:
    return datetime.fromtimestamp(float(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def hitbtc_recording(directory: Path, *, name: str = "HITBTC", host: str = "api.hitbtc.com",
                     socket: str = "/api/2/ws/public") -> tuple[Path, dict[str, MarketWalk]]:
    """HitBTC's API v2 as cryptofeed 1.x recorded it in 2021: the configuration names the
    pair `BTC-USD`, HitBTC's own spelling, where cryptofeed 2.4 calls HitBTC's USD (Tether)
    `USDT`; JSON-RPC `snapshotOrderbook`/`updateOrderbook` chained by `sequence`,
    `snapshotTrades`/`updateTrades`, `ticker` (no sizes) and candles. `name`, `host` and
    `socket` make the same API as Bitcoin.com's exchange served it (`BITCOINCOM`,
    api.exchange.bitcoin.com, `/api/2/ws`)."""
    writer = RecordingWriter(directory, name, {
        channel: ["BTC-USD"] for channel in ("ticker", "trades", "l2_book", "candles")},
        Decimal("1618677973"))
    writer.startup_rest(f"https://{host}/api/2/public/symbol", [
        {"id": pair, "baseCurrency": base, "quoteCurrency": quote, "quantityIncrement": "0.00001",
         "tickSize": "0.01", "takeLiquidityRate": "0.0025", "provideLiquidityRate": "0.001",
         "feeCurrency": quote}
        for pair, base, quote in (("BTCUSD", "BTC", "USD"), ("ETHBTC", "ETH", "BTC"))])
    walk = MarketWalk(Decimal("61000"), Decimal("0.01"), seed=15)
    writer.connect(1, f"wss://{host}{socket}")
    for method in ("subscribeCandles", "subscribeTrades", "subscribeOrderbook",
                   "subscribeTicker"):
        writer.sent({"method": method, "params": {"symbol": "BTCUSD"}, "id": f"{name}.ws.1"})
        writer.received({"jsonrpc": "2.0", "result": True, "id": f"{name}.ws.1"})

    def rpc(method: str, params: dict) -> None:
        writer.received({"jsonrpc": "2.0", "method": method,
                         "params": {**params, "symbol": "BTCUSD"}})

    def side(levels) -> list[dict]:
        return [{"price": str(p), "size": str(s)} for p, s in levels]

    rpc("snapshotCandles", {"data": [{"timestamp": _iso_ms(writer.now), "open": "61000",
                                      "close": "61000", "min": "61000", "max": "61000",
                                      "volume": "0.1", "volumeQuote": "6100"}], "period": "M1"})
    rpc("snapshotTrades", {"data": [{"id": 1, "price": "61000.00", "quantity": "0.01",
                                     "side": "buy", "timestamp": _iso_ms(writer.now)}]})
    sequence = 581682
    rpc("snapshotOrderbook", {"ask": side(sorted(walk.asks.items())),
                              "bid": side(sorted(walk.bids.items(), reverse=True)),
                              "sequence": sequence, "timestamp": _iso_ms(writer.now)})
    for step in range(STEPS):
        bid_changes, ask_changes = walk.step()
        sequence += 1
        rpc("updateOrderbook", {"ask": side(ask_changes), "bid": side(bid_changes),
                                "sequence": sequence, "timestamp": _iso_ms(writer.now)})
        (bid, _), (ask, _) = walk.touch()
        if step % 3 == 0:
            rpc("updateTrades", {"data": [{"id": 2 + step, "price": str(ask), "quantity": "0.02",
                                           "side": "buy", "timestamp": _iso_ms(writer.now)}]})
        if step % 5 == 0:
            rpc("ticker", {"ask": str(ask), "bid": str(bid), "last": str(ask), "open": "61000",
                           "low": "60000", "high": "62000", "volume": "10", "volumeQuote": "1",
                           "timestamp": _iso_ms(writer.now)})
    return writer.close(), {"BTC/USDT": walk}


def fmfw_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """FMFW.io's API v3 (`orderbook/full` snapshot then updates chained by `s`, each update
    changing both sides; `trades` and `candles/M1` as a snapshot then updates; `ticker/1s`)."""
    writer = RecordingWriter(directory, "FMFW", {
        channel: ["ETH-BTC"] for channel in ("ticker", "trades", "l2_book", "candles")},
        Decimal("1633806854"))
    writer.startup_rest("https://api.fmfw.io/api/3/public/symbol", {
        pair: {"type": "spot", "base_currency": base, "quote_currency": quote,
               "status": "working", "quantity_increment": "0.0001", "tick_size": "0.000001",
               "take_rate": "0.0025", "make_rate": "0.001", "fee_currency": quote}
        for pair, base, quote in (("ETHBTC", "ETH", "BTC"), ("BTCUSDT", "BTC", "USDT"))})
    walk = MarketWalk(Decimal("0.065"), Decimal("0.000001"), seed=16)
    writer.connect(1, "wss://api.fmfw.io/api/3/ws/public")
    for channel in ("ticker/1s", "trades", "orderbook/full", "candles/M1"):
        writer.sent({"method": "subscribe", "params": {"symbols": ["ETHBTC"]}, "ch": channel,
                     "id": 1234})
        writer.received({"result": {"ch": channel, "subscriptions": ["ETHBTC"]}, "id": 1234})

    def trade(step: int, price: Decimal) -> list[dict]:
        return [{"t": _ms(writer), "i": 1417984573 + step, "p": str(price), "q": "0.0420",
                 "s": "buy"}]

    candle = [{"t": _ms(writer) // 60000 * 60000, "o": "0.065", "c": "0.065", "h": "0.065",
               "l": "0.065", "v": "1.0", "q": "0.065"}]
    writer.received({"ch": "candles/M1", "snapshot": {"ETHBTC": candle}})
    writer.received({"ch": "trades", "snapshot": {"ETHBTC": trade(0, walk.mid)}})
    sequence = 1498336
    writer.received({"ch": "orderbook/full", "snapshot": {"ETHBTC": {
        "t": _ms(writer), "s": sequence, "a": strings(sorted(walk.asks.items())),
        "b": strings(sorted(walk.bids.items(), reverse=True))}}})
    for step in range(1, STEPS + 1):
        bid_changes, ask_changes = walk.step()
        sequence += 1
        writer.received({"ch": "orderbook/full", "update": {"ETHBTC": {
            "t": _ms(writer), "s": sequence, "a": strings(ask_changes),
            "b": strings(bid_changes)}}})
        (bid, bid_size), (ask, ask_size) = walk.touch()
        if step % 3 == 0:
            writer.received({"ch": "trades", "update": {"ETHBTC": trade(step, ask)}})
        if step % 5 == 0:
            writer.received({"ch": "ticker/1s", "data": {"ETHBTC": {
                "t": _ms(writer), "a": str(ask), "A": str(ask_size), "b": str(bid),
                "B": str(bid_size), "o": "0.065", "c": str(ask), "h": "0.066", "l": "0.064",
                "v": "10", "q": "0.65", "p": "0", "P": "0", "L": 1417984573 + step}}})
    return writer.close(), {"ETH/BTC": walk}


def independent_reserve_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """Independent Reserve, whose only book is order by order (cryptofeed's L3 book): one
    order per message (`NewOrder`, `OrderCanceled`, chained by `Nonce`), its REST snapshot
    of every order fetched at the first one, two orders at the first best bid, trades on
    `ticker-xbt-aud`. Prices come in every secondary currency; the book is in AUD."""
    writer = RecordingWriter(directory, "INDEPENDENT_RESERVE",
                             {"l3_book": ["BTC-AUD"], "trades": ["BTC-AUD"]},
                             Decimal("1649023806"))
    api = "https://api.independentreserve.com/Public/"
    writer.startup_rest(api + "GetValidPrimaryCurrencyCodes", ["Xbt", "Eth"])
    writer.startup_rest(api + "GetValidSecondaryCurrencyCodes", ["Aud", "Usd"])
    walk = MarketWalk(Decimal("61000"), Decimal("0.5"), seed=17)
    writer.connect(1, "wss://websockets.independentreserve.com")
    writer.sent({"Event": "Subscribe", "Data": ["ticker-xbt-aud", "orderbook-xbt"]})
    writer.received({"Time": _ms(writer), "Event": "Heartbeat"})
    writer.received({"Data": ["orderbook-xbt", "ticker-xbt-aud"], "Time": _ms(writer),
                     "Event": "Subscriptions"})
    nonce = 4908
    kinds = {"bid": "LimitBid", "ask": "LimitOffer"}

    def guid(side: str, price: Decimal) -> str:
        return f"{side}-{price}"

    def order(event: str, side: str, price: Decimal, size: Decimal | None = None) -> None:
        nonlocal nonce
        data = {"OrderType": kinds[side], "OrderGuid": guid(side, price)}
        if size is not None:
            data |= {"Price": {"aud": float(price), "usd": float(price * Decimal("0.75"))},
                     "Volume": float(size)}
        writer.received({"Channel": "orderbook-xbt", "Nonce": nonce, "Data": data,
                         "Time": _ms(writer), "Event": event})
        nonce += 1

    best_bid = max(walk.bids)
    split = walk.bids[best_bid] / 2  # the first best bid is two orders of half its size
    # The first order message makes cryptofeed fetch every order; the snapshot holds it.
    snapshot = {"BuyOrders": [{"Guid": guid("bid", p), "Price": float(p), "Volume": float(s)}
                              for p, s in walk.bids.items() if p != best_bid],
                "SellOrders": [{"Guid": guid("ask", p), "Price": float(p), "Volume": float(s)}
                               for p, s in walk.asks.items()]}
    snapshot["BuyOrders"] += [{"Guid": guid("bid", best_bid) + suffix, "Price": float(best_bid),
                               "Volume": float(split)} for suffix in ("", "-2")]
    writer.rest(f"{api}GetAllOrders?primaryCurrencyCode=xbt&secondaryCurrencyCode=aud", snapshot)
    order("OrderCanceled", "ask", walk.mid)  # already gone from the snapshot: passed over
    for step in range(STEPS):
        bid_changes, ask_changes = walk.step()
        for side, changes in (("ask", ask_changes), ("bid", bid_changes)):
            for price, size in changes:
                if size == 0 or price in (walk.bids if side == "bid" else walk.asks):
                    order("OrderCanceled", side, price)
                    if price == best_bid and side == "bid":
                        writer.received({"Channel": "orderbook-xbt", "Nonce": nonce, "Data": {
                            "OrderType": "LimitBid", "OrderGuid": guid("bid", price) + "-2"},
                            "Time": _ms(writer), "Event": "OrderCanceled"})
                        nonce += 1
                        best_bid = None
                if size:
                    order("NewOrder", side, price, size)
        if step % 3 == 0:
            (bid, _), _ = walk.touch()
            writer.received({"Channel": "ticker-xbt-aud", "Nonce": 78 + step, "Data": {
                "TradeGuid": f"trade-{step}", "Pair": "xbt-aud",
                "TradeDate": datetime.fromtimestamp(float(writer.now), UTC).isoformat(),
                "Price": float(bid), "Volume": 0.01, "BidGuid": "b", "OfferGuid": "o",
                "Side": "Sell"}, "Time": _ms(writer), "Event": "Trade"})
    return writer.close(), {"BTC/AUD": walk}


def binance_us_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """Binance US as an older cryptofeed recorded it in August 2021: its book snapshot asked
    at `/api/v1/depth?...&limit=5000` where cryptofeed 2.4.1 asks `/api/v3/...&limit=1000`
    (same body); `depth@100ms` diffs chained by `U`/`u`, the first ones older than the
    snapshot; `aggTrade`; `bookTicker`."""
    writer = RecordingWriter(directory, "BINANCE_US", {
        channel: ["MANA-USD"] for channel in ("l2_book", "trades", "ticker")},
        Decimal("1628952313"))
    writer.startup_rest("https://api.binance.us/api/v3/exchangeInfo", {
        "timezone": "UTC", "serverTime": _ms(writer), "symbols": [
            {"symbol": pair, "status": "TRADING", "baseAsset": base, "quoteAsset": "USD",
             "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00010000"}]}
            for pair, base in (("MANAUSD", "MANA"), ("BTCUSD", "BTC"))]})
    walk = MarketWalk(Decimal("0.8290"), Decimal("0.0001"), seed=18)
    writer.connect(1, "wss://stream.binance.us:9443/stream?streams=manausd@depth@100ms/"
                      "manausd@aggTrade/manausd@bookTicker")
    update_id = 108545600

    def depth(bid_changes, ask_changes) -> None:
        nonlocal update_id
        writer.received({"stream": "manausd@depth@100ms", "data": {
            "e": "depthUpdate", "E": _ms(writer), "s": "MANAUSD", "U": update_id + 1,
            "u": update_id + 2, "b": strings(bid_changes), "a": strings(ask_changes)}})
        update_id += 2

    stale = walk.touch()
    depth([stale[0]], [stale[1]])  # older than the snapshot: dropped by cryptofeed
    writer.rest("https://api.binance.us/api/v1/depth?symbol=MANAUSD&limit=5000", {
        "lastUpdateId": update_id, "bids": strings(sorted(walk.bids.items(), reverse=True)),
        "asks": strings(sorted(walk.asks.items()))})
    for step in range(STEPS):
        depth(*walk.step())
        (bid, bid_size), (ask, ask_size) = walk.touch()
        if step % 3 == 0:
            writer.received({"stream": "manausd@aggTrade", "data": {
                "e": "aggTrade", "E": _ms(writer), "s": "MANAUSD", "a": 1000 + step,
                "p": str(ask), "q": "12.5", "f": 2000 + step, "l": 2000 + step,
                "T": _ms(writer), "m": False, "M": True}})
        writer.received({"stream": "manausd@bookTicker", "data": {
            "u": update_id, "s": "MANAUSD", "b": str(bid), "B": str(bid_size), "a": str(ask),
            "A": str(ask_size)}})
    return writer.close(), {"MANA/USD": walk}


def bitstamp_single_file_recording(directory: Path, *, with_startup: bool = True
                                   ) -> tuple[Path, dict[str, MarketWalk]]:
    """Bitstamp as cryptofeed's recorder of early 2021 wrote it: one file `BITSTAMP-b88f8b.0`
    holding the configuration, the session (connect, subscribe, received lines) and the REST
    book snapshot asked after subscribing, but no start-up symbol list; with `with_startup` the
    exchange's own start-up file `BITSTAMP.0` (another day's pair list) lies beside it. Diffs
    older than the snapshot come first; `live_trades`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = Decimal("1617654351")
    # PAX-USD was listed on the day of the recording, not in the start-up file of another day
    # beside it: left out, its messages passed over.
    configuration = {"l2_book": ["XLM-EUR", "PAX-USD"], "trades": ["XLM-EUR"]}
    lines = [f"configuration: {json.dumps(configuration)}"]

    def tick() -> str:
        nonlocal now
        now += Decimal("0.05")
        return _ts(now)

    address = "wss://ws.bitstamp.net/"
    lines.append(f"{address} <-> {tick()}")
    for channel in ("diff_order_book_xlmeur", "live_trades_xlmeur"):
        lines.append(f"{address} <- {tick()}: " + _text(
            {"event": "bts:subscribe", "data": {"channel": channel}}))
    walk = MarketWalk(Decimal("0.42500"), Decimal("0.00001"), seed=19)

    def diff(bid_changes, ask_changes) -> None:
        seconds = tick()
        lines.append(f"{seconds}: " + _text({"data": {
            "timestamp": seconds.split(".")[0], "microtimestamp": seconds.replace(".", ""),
            "bids": strings(bid_changes), "asks": strings(ask_changes)},
            "channel": "diff_order_book_xlmeur", "event": "data"}))

    lines.append(f"{tick()}: " + _text({"event": "bts:subscription_succeeded",
                                         "channel": "diff_order_book_xlmeur", "data": {}}))
    (bid, bid_size), (ask, ask_size) = walk.touch()
    diff([(bid, bid_size)], [(ask, ask_size)])  # older than the snapshot: dropped
    now += 2
    snapshot_seconds = tick()
    lines.append("https://www.bitstamp.net/api/v2/order_book/xlmeur -> "
                 f"{snapshot_seconds}: " + _text({
                     "timestamp": snapshot_seconds.split(".")[0],
                     "microtimestamp": snapshot_seconds.replace(".", ""),
                     "bids": strings(sorted(walk.bids.items(), reverse=True)),
                     "asks": strings(sorted(walk.asks.items()))}))
    now += 1
    for step in range(STEPS):
        diff(*walk.step())
        if step % 40 == 0:
            lines.append(f"{tick()}: " + _text({"data": {
                "timestamp": "1617654471", "microtimestamp": "1617654471275477",
                "bids": [["1.0001", "10.0"]], "asks": []},
                "channel": "diff_order_book_paxusd", "event": "data"}))
        if step % 3 == 0:
            (bid, _), _ = walk.touch()
            seconds = tick()
            lines.append(f"{seconds}: " + _text({"data": {
                "id": 1000 + step, "timestamp": seconds.split(".")[0], "amount": 12.5,
                "amount_str": "12.5", "price": float(bid), "price_str": str(bid), "type": 1,
                "microtimestamp": seconds.replace(".", ""), "buy_order_id": 1,
                "sell_order_id": 2}, "channel": "live_trades_xlmeur", "event": "trade"}))
    (directory / "BITSTAMP-b88f8b.0").write_text("\n".join(lines) + "\n")
    if with_startup:
        pairs = [{"trading": "Enabled", "base_decimals": 8, "url_symbol": url, "name": name,
                  "instant_and_market_orders": "Enabled", "minimum_order": "10.0 EUR",
                  "counter_decimals": 5, "description": name}
                 for url, name in (("xlmeur", "XLM/EUR"), ("btcusd", "BTC/USD"))]
        (directory / "BITSTAMP.0").write_text(
            f"configuration: {json.dumps({'l2_book': ['BTC-USD']})}\n"
            f"https://www.bitstamp.net/api/v2/trading-pairs-info/ -> 1641343690.596035: "
            f"{_text(pairs)}\n")
    return directory, {"XLM/EUR": walk}


def bitmax_recording(directory: Path) -> tuple[Path, dict[str, MarketWalk]]:
    """BitMax (AscendEX before its renaming) as recorded in April 2021: `BITMAX.0` asked the
    products of bitmax.io, the session is at wss://bitmax.io/0/api/pro/v1/stream; `depth`
    diffs chained by `seqnum`, a `depth-snapshot` asked over the websocket (diffs before it
    are dropped), `trades` with `bm` (buyer is maker)."""
    writer = RecordingWriter(directory, "BITMAX", {
        channel: ["CHR-USDT"] for channel in ("l2_book", "trades")}, Decimal("1618677608"))
    writer.startup_rest("https://bitmax.io/api/pro/v1/products", {"code": 0, "data": [
        {"symbol": pair, "displayName": pair, "baseAsset": pair.split("/")[0],
         "quoteAsset": pair.split("/")[1], "status": status, "minNotional": "5",
         "maxNotional": "200000", "marginTradable": False, "commissionType": "Quote",
         "commissionReserveRate": "0.002", "tickSize": "0.00001", "lotSize": "1"}
        for pair, status in (("CHR/USDT", "Normal"), ("LBA/BTC", "NoTrading"))]})
    walk = MarketWalk(Decimal("0.37"), Decimal("0.00001"), seed=17)
    address = "wss://bitmax.io/0/api/pro/v1/stream"
    writer.connect(15, address)
    writer.sent({"op": "sub", "ch": "depth:CHR/USDT"})
    writer.sent({"op": "sub", "ch": "trades:CHR/USDT"})
    writer.sent({"op": "req", "action": "depth-snapshot", "args": {"symbol": "CHR/USDT"}})
    writer.received({"m": "connected", "type": "unauth"})
    for channel in ("depth:CHR/USDT", "trades:CHR/USDT"):
        writer.received({"m": "sub", "ch": channel, "code": 0})
    seqnum = 45632691677

    def depth(kind: str, bids, asks) -> None:
        writer.received({"m": kind, "symbol": "CHR/USDT", "data": {
            "ts": _ms(writer), "seqnum": seqnum, "asks": strings(asks), "bids": strings(bids)}})

    depth("depth", [], [(walk.mid * 2, Decimal("1"))])  # before the snapshot: dropped
    depth("depth-snapshot", sorted(walk.bids.items(), reverse=True), sorted(walk.asks.items()))
    for step in range(1, STEPS + 1):
        bid_changes, ask_changes = walk.step()
        seqnum += 1
        depth("depth", bid_changes, ask_changes)
        _, (ask, _) = walk.touch()
        if step % 3 == 0:
            writer.received({"m": "trades", "symbol": "CHR/USDT", "data": [
                {"p": str(ask), "q": "14", "ts": _ms(writer), "bm": False,
                 "seqnum": 36028797875140000 + step}]})
    return writer.close(), {"CHR/USDT": walk}
