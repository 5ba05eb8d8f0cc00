"""cryptofeed's callback objects (OrderBook, Trade, Ticker) as quoteflow events.

Conventions:
- symbol: cryptofeed's `BTC-USD` becomes `BTC/USD`; derivatives take ccxt's form, e.g.
  `UNI-USD-PERP` -> `UNI/USD:UNI`, `BTC-USD-22K27` -> `BTC/USD:BTC-220527`,
  `BTC-USD-30000-22K27-call` -> `BTC/USD:BTC-220527-30000-C`, `BTC-JPY-FX` -> `BTC/JPY:JPY`
  (live subscriptions take spot, perpetual and future symbols only). cryptofeed writes a pair
  whose base is its quote once (Deribit's coin-priced options): `BTC-8000-21U24-put` ->
  `BTC/BTC:BTC-210924-8000-P`, prices in the coin. cryptofeed's
  symbol does not say the settlement currency: contracts quoted in a stablecoin settle in it
  (linear), others in the base currency (inverse), which holds for OKX, Binance and Bybit.
- exchange_ts: cryptofeed's float seconds, rounded to the microsecond (no venue here is finer,
  and float seconds near 1.6e9 are only good to ~0.2 µs); the receive time when cryptofeed has
  none. Some feeds hand over the exchange's integer milliseconds instead (cryptofeed 2.4's
  Bybit books and tickers): a time past the year 5000 in seconds is read by its magnitude as
  milliseconds, microseconds or nanoseconds, exactly.
- L2 books: cryptofeed's delta when it gives one, the whole book otherwise; seq is cryptofeed's
  sequence_number (Binance's update id), else None.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
from cryptofeed.defines import ASK, BID, L2_BOOK, L3_BOOK, TICKER, TRADES
from cryptofeed.types import OrderBook, Ticker
from cryptofeed.types import Trade as CryptofeedTrade

from models.events import BBO, AnyMarketEvent, BookDelta, BookSnapshot, Level, Trade

_STABLECOINS = frozenset({"USDT", "USDC", "BUSD", "DAI", "TUSD", "USDP", "FDUSD"})
_MONTH_CODES = "FGHJKMNQUVXZ"  # futures month letters, January to December
_OPTION_TYPES = {"call": "C", "put": "P"}  # cryptofeed's CALL / PUT, ccxt's letters
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventSink:
    """Collects the events one recorded input makes cryptofeed call back with.

    The driver sets `receive_ns` before handing cryptofeed each message, then takes `events`
    and `failures` (callback objects that could not be converted, with the reason) after it.
    """

    __slots__ = ("_normalized", "_symbols", "_ticker_sizes", "_venue", "events", "failures",
                 "receive_ns", "snapshot_times", "unnamed")

    def __init__(self, venue: str, ticker_sizes: tuple[str, str] | None) -> None:
        self._venue = venue
        self._ticker_sizes = ticker_sizes
        self._symbols: dict[str, str] = {}
        self._normalized: dict[str, str] = {}
        self.events: list[AnyMarketEvent] = []
        self.failures: list[str] = []
        self.receive_ns = 0
        # Receive times of REST snapshots served to cryptofeed, for the whole books it then
        # builds from them: those were received then, not with the message that asked.
        self.snapshot_times: deque[int] = deque()
        # Instruments left out of a replay because its start-up lists do not name them (the
        # letters of their names): cryptofeed's UnsupportedSymbol for one of them is expected.
        self.unnamed: set[str] = set()

    def names_unnamed(self, failure: str) -> bool:
        """Whether `failure` is cryptofeed refusing a symbol left out of the replay."""
        name = _UNSUPPORTED.match(failure)
        return bool(name) and letters(name[1]) in self.unnamed

    def know_symbols(self, normalized_to_exchange: dict[str, str]) -> None:
        """The feed's symbol table (cryptofeed's normalized symbol -> the exchange's). Some
        feeds call back with the exchange's own symbol (cryptofeed 2.4's KuCoin: `BCHSV-USDT`
        for its normalized `BSV-USDT`): such a symbol is read through the table."""
        self._normalized = {
            exchange: normalized
            for normalized, exchange in normalized_to_exchange.items()
            if exchange not in normalized_to_exchange
        }

    def callbacks(self, offered: Collection[str] = (L2_BOOK,)) -> dict:
        """A venue whose ticker sizes are unknown consumes no tickers (docs/venues.md). A feed
        that `offered` no L2 book but an order-by-order one (Independent Reserve) has its
        L3 book read as price levels."""
        callbacks = {L2_BOOK: self.on_book, TRADES: self.on_trade}
        if L2_BOOK not in offered and L3_BOOK in offered:
            callbacks[L3_BOOK] = self.on_orders_book
        if self._ticker_sizes is not None:
            callbacks[TICKER] = self.on_ticker
        return callbacks

    def take(self) -> tuple[list[AnyMarketEvent], list[str]]:
        """The events and failures collected since the last take, handed over whole."""
        taken = self.events, self.failures
        self.events, self.failures = [], []
        self.snapshot_times.clear()
        return taken

    async def on_orders_book(self, book: OrderBook, _receipt: float) -> None:
        """An L3 book (price -> {order id: size}) as price levels: a snapshot totals the
        orders at each price; an update gives each price it touched the total left there."""
        try:
            delta = book.delta
            if delta is not None:
                delta = {side: [(price, _total(book.book[side], price))
                                for _order, price, _size in delta[side]]
                         for side in (BID, ASK)}
            levels = {side: [(price, sum(orders.values()))
                             for price, orders in book.book[side].to_list()]
                      for side in (BID, ASK)}
        except Exception as exc:
            self.failures.append(f"L3 book {book.symbol}: {describe(exc)}")
            return
        await self.on_book(book, _receipt, delta=delta, levels=levels)

    async def on_book(self, book: OrderBook, _receipt: float, *, delta=..., levels=None) -> None:
        # cryptofeed mutates and reuses one OrderBook per symbol: convert it now.
        try:
            if delta is ...:
                delta = book.delta
            if delta is None:
                times = self.snapshot_times
                receive_ns = times.popleft() if times else self.receive_ns
                self.events.append(
                    BookSnapshot(
                        venue=self._venue,
                        symbol=self._symbol(book.symbol),
                        exchange_ts=_exchange_ns(book.timestamp, receive_ns),
                        receive_ts=receive_ns,
                        seq=book.sequence_number,
                        bids=levels[BID] if levels else book.book.bids.to_list(),
                        asks=levels[ASK] if levels else book.book.asks.to_list(),
                    )
                )
            else:
                event = BookDelta(
                    venue=self._venue,
                    symbol=self._symbol(book.symbol),
                    exchange_ts=_exchange_ns(book.timestamp, self.receive_ns),
                    receive_ts=self.receive_ns,
                    seq=book.sequence_number,
                    bids=_levels(delta[BID]),
                    asks=_levels(delta[ASK]),
                )
                last = self.events[-1] if self.events else None
                if isinstance(last, BookDelta) and last.symbol == event.symbol:
                    # One message is one atomic update, but some feeds call back more than
                    # once for it (cryptofeed 2.4's FMFW: after the bids, then after the asks,
                    # each time with the changes so far): a book read between the calls can
                    # look crossed. The message's changes make one event.
                    self.events[-1] = _merged(last, event)
                else:
                    self.events.append(event)
        except Exception as exc:
            self.failures.append(f"L2 book {book.symbol}: {describe(exc)}")

    async def on_trade(self, trade: CryptofeedTrade, _receipt: float) -> None:
        try:
            self.events.append(
                Trade(
                    venue=self._venue,
                    symbol=self._symbol(trade.symbol),
                    exchange_ts=_exchange_ns(trade.timestamp, self.receive_ns),
                    receive_ts=self.receive_ns,
                    price=trade.price,
                    size=trade.amount,
                    side=trade.side,
                    trade_id=trade.id,
                )
            )
        except Exception as exc:
            self.failures.append(f"trade {trade.symbol}: {describe(exc)}")

    async def on_ticker(self, ticker: Ticker, _receipt: float) -> None:
        try:
            if self._ticker_sizes is None:
                raise ValueError("this venue's ticker carries no bid/ask sizes")
            if not (ticker.bid and ticker.ask):
                raise ValueError(f"one-sided ticker: bid {ticker.bid} ask {ticker.ask}")
            bid_size, ask_size = self._ticker_sizes
            self.events.append(
                BBO(
                    venue=self._venue,
                    symbol=self._symbol(ticker.symbol),
                    exchange_ts=_exchange_ns(ticker.timestamp, self.receive_ns),
                    receive_ts=self.receive_ns,
                    bid_price=_decimal(ticker.bid),
                    bid_size=_decimal(_at(ticker.raw, bid_size)),
                    ask_price=_decimal(ticker.ask),
                    ask_size=_decimal(_at(ticker.raw, ask_size)),
                )
            )
        except Exception as exc:
            self.failures.append(f"ticker {ticker.symbol}: {describe(exc)}")

    def _symbol(self, cryptofeed_symbol: str) -> str:
        symbol = self._symbols.get(cryptofeed_symbol)
        if symbol is None:
            normalized = self._normalized.get(cryptofeed_symbol, cryptofeed_symbol)
            symbol = self._symbols[cryptofeed_symbol] = unified_symbol(normalized)
        return symbol


def _at(raw, path: str):
    """`raw[a][b]...` for the path `a.b...` (a number indexes a list): where a feed keeps the
    ticker sizes, e.g. `B` (Binance) or `params.message.best_bid_size` (bitFlyer)."""
    value = raw
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def _decimal(value) -> Decimal:
    if value.__class__ is Decimal:
        return value
    return Decimal(repr(value) if isinstance(value, float) else value)


def unified_symbol(cryptofeed_symbol: str) -> str:
    """cryptofeed's normalized symbol in ccxt's unified form (see the module notes)."""
    parts = cryptofeed_symbol.split("-")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"not a cryptofeed instrument symbol: {cryptofeed_symbol!r}")
    base, *rest = parts
    if _is_contract_part(rest[0]):
        # cryptofeed writes a pair of one currency once: Deribit's options, priced in the coin
        # (base and quote BTC), are `BTC-8000-21U24-put`.
        quote, contract = base, rest
    else:
        quote, *contract = rest
    pair = f"{base}/{quote}"
    if not contract:
        return pair
    settled = f"{pair}:{quote if quote in _STABLECOINS else base}"
    if contract == ["PERP"]:
        return settled
    if contract == ["FX"]:  # bitFlyer's FX_BTC_JPY, margin-traded and settled in the quote
        return f"{pair}:{quote}"
    if len(contract) == 1:
        return f"{settled}-{_expiry(contract[0])}"
    if len(contract) == 3 and contract[2] in _OPTION_TYPES:
        strike, expiry, kind = contract
        return f"{settled}-{_expiry(expiry)}-{strike}-{_OPTION_TYPES[kind]}"
    raise ValueError(f"not a spot, perpetual, future or option symbol: {cryptofeed_symbol!r}")


def cryptofeed_symbol(unified: str) -> str:
    """The inverse of `unified_symbol`: ccxt's `BTC/USDT:USDT` as cryptofeed's `BTC-USDT-PERP`."""
    pair, _, contract = unified.partition(":")
    base, slash, quote = pair.partition("/")
    if not (slash and base and quote) or "-" in pair or "/" in quote:
        raise ValueError(f"not a unified symbol BASE/QUOTE[:SETTLE[-YYMMDD]]: {unified!r}")
    spot = f"{base}-{quote}"
    if not contract:
        return spot
    settle, _, expiry = contract.partition("-")
    if settle != (quote if quote in _STABLECOINS else base):
        # cryptofeed's symbol cannot say the settlement currency: only the usual one maps.
        raise ValueError(f"{unified!r}: cryptofeed has no symbol for a contract settled in "
                         f"{settle}")
    if not expiry:
        return f"{spot}-PERP"
    try:
        return f"{spot}-{expiry_code(expiry)}"
    except ValueError:
        raise ValueError(f"{unified!r}: expiry must be YYMMDD") from None


def expiry_code(yymmdd: str) -> str:
    """ccxt's (and Binance's) `220527` as cryptofeed's expiry code `22K27`."""
    if not (len(yymmdd) == 6 and yymmdd.isdigit()
            and 1 <= int(yymmdd[2:4]) <= 12 and 1 <= int(yymmdd[4:]) <= 31):
        raise ValueError(f"not a YYMMDD expiry: {yymmdd!r}")
    return f"{yymmdd[:2]}{_MONTH_CODES[int(yymmdd[2:4]) - 1]}{int(yymmdd[4:])}"


def _is_contract_part(part: str) -> bool:
    """A strike, expiry code, PERP or FX where cryptofeed's symbol would have its quote."""
    if part in ("PERP", "FX") or part.isdigit():
        return True
    return len(part) >= 4 and part[:2].isdigit() and part[2] in _MONTH_CODES and part[3:].isdigit()


def _expiry(code: str) -> str:
    """cryptofeed's `22K27` (year, month letter, unpadded day) as ccxt's `220527`."""
    year, month, day = code[:2], code[2:3], code[3:]
    if not (year.isdigit() and day.isdigit() and month and month in _MONTH_CODES):
        raise ValueError(f"not a cryptofeed expiry code: {code!r}")
    return f"{year}{_MONTH_CODES.index(month) + 1:02d}{int(day):02d}"


_UNSUPPORTED = re.compile(r"UnsupportedSymbol: (\S+) is not supported")


def letters(name: str) -> str:
    """The letters and digits of a name: `MANA-USD` and `MANAUSD` spell the same instrument."""
    return re.sub(r"[^0-9A-Z]", "", name.upper())


def _total(side, price) -> Decimal:
    """The size of all orders at `price` on one side of an L3 book; 0 when none is left."""
    if price not in side:  # order_book's SortedDict has no get()
        return Decimal(0)
    return sum(side[price].values(), Decimal(0))


def _merged(first: BookDelta, then: BookDelta) -> BookDelta:
    """`first` then `then` as one delta: a level changed twice keeps its last size."""
    def sides(a: list[Level], b: list[Level]) -> list[Level]:
        return list({**dict(a), **dict(b)}.items())

    return msgspec.structs.replace(then, bids=sides(first.bids, then.bids),
                                   asks=sides(first.asks, then.asks))


def _levels(levels: list) -> list[Level]:
    # Some feeds mark a removed level with the int 0, some pass the exchange's strings through
    # (Bybit's deltas); events keep Decimal throughout.
    return [
        (
            price if price.__class__ is Decimal else Decimal(price),
            size if size.__class__ is Decimal else Decimal(size),
        )
        for price, size in levels
    ]


# Float seconds stay below this for 3000 years; a larger "time" is in a finer unit.
_SECONDS_LIMIT = 10**11
# (upper bound, nanoseconds per unit): milliseconds, microseconds, nanoseconds.
_FINER_UNITS = ((10**14, 1_000_000), (10**17, 1_000), (10**20, 1))


def _exchange_ns(timestamp: float | datetime | None, fallback_ns: int) -> int:
    if timestamp is None:
        return fallback_ns
    if isinstance(timestamp, datetime):
        # cryptofeed 2.4's Coinbase book passes the parsed datetime through unconverted.
        since = timestamp - _EPOCH
        return ((since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds) * 1_000
    if timestamp >= _SECONDS_LIMIT:
        value = Decimal(timestamp if isinstance(timestamp, int) else repr(timestamp))
        for limit, ns_per_unit in _FINER_UNITS:
            if value < limit:
                return int(value * ns_per_unit)
        raise ValueError(f"not a time: {timestamp!r}")
    return round(timestamp * 1_000_000) * 1_000


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
