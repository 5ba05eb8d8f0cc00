"""Exchanges outside the six recorded in /work/shared/data replay with no code of their own.

/work/shared/data/cryptofeed holds recordings of six exchanges only. The recordings here are
constructed samples (tests/cryptofeed_recordings.py): messages written in each exchange's
documented websocket format (Bybit v5 public `orderbook`/`publicTrade`/`tickers`, Gate.io v4
`spot.order_book_update`/`spot.trades`/`spot.tickers` with its REST book snapshot), in
cryptofeed's raw-recording file format, as its recorder writes them. They are replayed through
cryptofeed 2.4.1's real Bybit and Gateio feed classes, exactly as the real recordings are.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.replay.cryptofeed_recording import iter_recording
from connectors.venues import sequencing_rule, venue_for
from models.book import OrderBook
from models.events import BBO, BookDelta, BookSnapshot, DeadLetter, Trade
from quoteflow.cli import app
from tests.cryptofeed_recordings import MarketWalk, RecordingWriter, strings

D = Decimal
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
    }, D("1700000000"))
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
    walks = {"BTC/USDT:USDT": MarketWalk(D("60000.0"), D("0.1"), seed=1),
             "ETH/USDT": MarketWalk(D("2500.00"), D("0.01"), seed=2)}
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
    }, D("1700000000"))
    writer.startup_rest("https://api.gateio.ws/api/v4/spot/currency_pairs", [
        {"id": "BTC_USDT", "base": "BTC", "quote": "USDT", "fee": "0.2",
         "min_base_amount": "0.00001", "min_quote_amount": "3", "amount_precision": 6,
         "precision": 1, "trade_status": "tradable", "sell_start": 0, "buy_start": 0},
        {"id": "DOGE_USDT", "base": "DOGE", "quote": "USDT", "fee": "0.2",
         "amount_precision": 2, "precision": 6, "trade_status": "untradable"},
    ])
    walk = MarketWalk(D("37000.0"), D("0.1"), seed=3)
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


BUILDERS = {"bybit": bybit_recording, "gateio": gateio_recording}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def replayed(request, tmp_path_factory):
    exchange = request.param
    directory, walks = BUILDERS[exchange](tmp_path_factory.mktemp(exchange))
    replay = iter_recording(directory, exchange)
    return exchange, list(replay), replay.stats, walks


def test_every_message_is_used_or_deliberately_ignored_and_none_is_a_dead_letter(replayed):
    exchange, events, stats, walks = replayed
    assert stats.accounted and stats.failed == 0 and stats.produced > STEPS
    assert not [e for e in events if isinstance(e, DeadLetter)]
    assert {(e.venue, e.symbol) for e in events} == {(exchange, s) for s in walks}


def test_books_never_cross_and_end_where_the_market_did(replayed):
    exchange, events, _, walks = replayed
    books = {}
    for event in events:
        if isinstance(event, BookSnapshot | BookDelta):
            book = books.get(event.symbol)
            if book is None:
                book = books[event.symbol] = OrderBook(exchange, event.symbol,
                                                       sequencing_rule(exchange))
            book.apply(event)
            if book.synced:
                assert book.best_bid()[0] < book.best_ask()[0], event
    for symbol, walk in walks.items():
        book = books[symbol]
        assert (book.stats.gaps, book.stats.crossed) == (0, 0) and book.synced
        assert (book.best_bid(), book.best_ask()) == walk.touch()


def test_trades_and_times(replayed):
    _, events, _, walks = replayed
    trades = [e for e in events if isinstance(e, Trade)]
    assert {t.symbol for t in trades} == set(walks)
    assert all(t.price > 0 and t.size > 0 and t.side in ("buy", "sell") for t in trades)
    # Bybit hands cryptofeed integer milliseconds for book and ticker times: still nanoseconds.
    for event in events:
        assert abs(event.exchange_ts - event.receive_ts) < 10**9, event


def test_sized_tickers_become_bbos_where_the_descriptor_says_where_the_sizes_are(replayed):
    exchange, events, _, _ = replayed
    bbos = [e for e in events if isinstance(e, BBO)]
    if venue_for(exchange).ticker_sizes is None:
        assert not bbos  # Gate.io's tickers carry no sizes: parsed by cryptofeed, not consumed
        return
    assert bbos and {b.symbol for b in bbos} == {"BTC/USDT:USDT"}
    assert all(0 < b.bid_price < b.ask_price and b.bid_size > 0 for b in bbos)


def test_quoteflow_replay_reads_them_and_refuses_what_it_cannot_read(tmp_path):
    directory, _ = bybit_recording(tmp_path / "bybit")
    out = tmp_path / "out.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["replay", str(directory / "BYBIT.ws.1.0"),
                                 str(directory / "BYBIT.ws.2.0"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert '"dead_letter"' not in out.read_text() and '"crossed"' not in out.read_text()

    unknown = tmp_path / "MTGOX.ws.1.0"
    unknown.write_text("wss://mtgox <-> 1.0\n")
    (directory / "BYBIT.0").unlink()
    for path, reason in ((unknown, "unknown exchange 'MTGOX'"),
                         (directory / "BYBIT.ws.1.0", "no cryptofeed recording")):
        result = runner.invoke(app, ["replay", str(path), "--out", str(out)])
        assert result.exit_code == 2
        assert reason in " ".join(result.output.replace("│", " ").split())
        assert "Traceback" not in result.output
