"""Typed, versioned events that flow between quoteflow's processes.

Every event is a msgspec Struct tagged by `type` so a single decoder can read any
topic. Prices and sizes are `Decimal` so they keep the venue's precision end to end;
timestamps are integer nanoseconds since the Unix epoch.

Conventions:
- `venue` is the ccxt exchange id (`binance`, `binanceusdm`, `coinbase`, ...).
- `symbol` is unified `BASE/QUOTE` for spot and ccxt form (`BTC/USDT:USDT`) for derivatives.
- `exchange_ts` is the exchange's event time, `receive_ts` the local receive time.
- `seq` is the exchange's update id where it has one (Binance `u`), else None.
- Book levels (`bids`/`asks` of `BookSnapshot` and `BookDelta`) are a list of
  `(price, size)` pairs, or, from the Binance decoder, a `Levels` (`quoteflow_book`, the
  compiled book's crate): the same pairs parsed from the venue's JSON into exact numbers,
  whose `Decimal`s are made only when read (`len`, indexing and slices, iteration, `==` with
  a list, `repr` and pickling behave as the list's). The book takes their prices without
  any `Decimal`; `encode` and `to_builtins` write them byte for byte as the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec
from quoteflow_book import Levels, LevelsError, LevelTable  # noqa: F401 (for the decoders)

SCHEMA_VERSION = 1
CONTROL_SCHEMA_VERSION = 2  # ControlCommand with a signature

Side = Literal["buy", "sell"]
Level = tuple[Decimal, Decimal]
Sequence.register(Levels)  # a read-only sequence of Level pairs


class Event(msgspec.Struct, kw_only=True, tag_field="type", omit_defaults=False):
    """Base of every event; `v` is the schema version the producer wrote."""

    v: int = SCHEMA_VERSION


class MarketEvent(Event, kw_only=True):
    venue: str
    symbol: str
    exchange_ts: int
    receive_ts: int
    seq: int | None = None

    @property
    def key(self) -> str:
        """Kafka key: one partition keeps one instrument in order."""
        return f"{self.venue}:{self.symbol}"


def exchange_time(event: MarketEvent) -> int:
    """When `event` happened on the exchange clock: its `exchange_ts`, or its receive time
    when it carries none (0). The paper venue matches, and stamps its fills, on this clock."""
    return event.exchange_ts or event.receive_ts


class BookSnapshot(MarketEvent, tag="book_snapshot", kw_only=True):
    """Full L2 state; `seq` is the snapshot's last update id (Binance `lastUpdateId`)."""

    bids: list[Level]
    asks: list[Level]


class BookDelta(MarketEvent, tag="book_delta", kw_only=True):
    """L2 changes; a size of 0 removes the level.

    `first_seq` is the first update id in the message (Binance `U`) and `prev_seq` the
    previous message's last id where the venue says it (Binance USD-M `pu`).
    """

    bids: list[Level]
    asks: list[Level]
    first_seq: int | None = None
    prev_seq: int | None = None


class BBO(MarketEvent, tag="bbo", kw_only=True):
    bid_price: Decimal
    bid_size: Decimal
    ask_price: Decimal
    ask_size: Decimal


class Trade(MarketEvent, tag="trade", kw_only=True):
    """A public trade; `side` is the taker's side."""

    price: Decimal
    size: Decimal
    side: Side
    trade_id: str | None = None


class Quote(msgspec.Struct, frozen=True):
    """One resting order the strategy wants: price and size already on the venue's grid."""

    price: Decimal
    size: Decimal


class OrderIntent(Event, tag="order_intent", kw_only=True):
    """The full desired set of resting orders for one instrument.

    A whole desired state (not a diff) so the executor can diff it against live orders and a
    replayed intent is harmless. `intent_id` is deterministic from (strategy, instrument,
    triggering event) so duplicates can be recognised.
    """

    intent_id: str
    venue: str
    symbol: str
    ts: int
    strategy: str
    bids: list[Quote]
    asks: list[Quote]
    reference_mid: Decimal | None = None
    trigger_receive_ts: int | None = None
    # The exchange time of the market event the intent answers: fills report it, so every
    # fill can be checked to come from market activity after its order was decided.
    trigger_exchange_ts: int | None = None

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"


OrderEventKind = Literal["ack", "partial_fill", "fill", "cancel", "reject", "amend"]


class OrderEvent(Event, tag="order_event", kw_only=True):
    venue: str
    symbol: str
    ts: int
    kind: OrderEventKind
    client_order_id: str
    exchange_order_id: str | None = None
    side: Side
    price: Decimal | None
    size: Decimal
    filled: Decimal = Decimal(0)
    remaining: Decimal = Decimal(0)
    reason: str | None = None


class Fill(Event, tag="fill", kw_only=True):
    """One execution of one of our orders. `fee` is in the quote currency; a rebate is < 0."""

    venue: str
    symbol: str
    ts: int
    client_order_id: str
    trade_id: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: Literal["maker", "taker"]
    # Why the fill happened, on the exchange clock (set by the paper venue; live venues
    # leave them empty): `cause` is the market activity that filled the order (a `trade`
    # print, a `book` change moving through our price, or our order's own `arrival` when it
    # crossed as a taker); the order was decided on the market event at
    # `order_trigger_exchange_ts` and reached the venue at `order_arrival_exchange_ts`.
    cause: Literal["trade", "book", "arrival"] | None = None
    cause_exchange_ts: int | None = None
    order_trigger_exchange_ts: int | None = None
    order_arrival_exchange_ts: int | None = None


class Position(Event, tag="position", kw_only=True):
    venue: str
    symbol: str
    ts: int
    quantity: Decimal
    average_price: Decimal | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    mark_price: Decimal | None = None


class DeadLetter(Event, tag="dead_letter", kw_only=True):
    """Input that could not be turned into an event, kept whole with the reason."""

    source: str
    reason: str
    raw: str
    receive_ts: int | None = None
    # "base64" when the input bytes were not UTF-8 text (Kafka dead letters keep them exact).
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"


class ArbSignal(Event, tag="arb_signal", kw_only=True):
    """A price difference between two instruments of the same asset, net of taker fees.

    Buying `size` at `buy_price` on one leg and selling it at `sell_price` on the other earns
    `net_edge_bps` after both legs' taker fees; `kind` is `cross_venue` or `spot_perp`.
    """

    ts: int
    kind: Literal["cross_venue", "spot_perp"]
    buy_venue: str
    buy_symbol: str
    buy_price: Decimal
    sell_venue: str
    sell_symbol: str
    sell_price: Decimal
    size: Decimal
    gross_edge_bps: float
    net_edge_bps: float
    buy_age_ns: int
    sell_age_ns: int

    @property
    def key(self) -> str:
        return f"{self.buy_venue}:{self.buy_symbol}>{self.sell_venue}:{self.sell_symbol}"


class Prediction(Event, tag="prediction", kw_only=True):
    """An online model's forecast of the mid's direction over `horizon_ns`."""

    venue: str
    symbol: str
    ts: int
    horizon_ns: int
    model: str
    prob_up: float
    prob_down: float
    expected_move: float = 0.0
    rolling_accuracy: float | None = None
    baseline_accuracy: float | None = None
    rolling_log_loss: float | None = None

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"


class RiskEvent(Event, tag="risk_event", kw_only=True):
    """A risk decision worth keeping: a rejected order, a limit breach, a state change."""

    ts: int
    kind: Literal["reject", "breach", "state_change", "limit_change"]
    reason_code: str
    detail: str
    state: Literal["ACTIVE", "REDUCING", "HALTED"]
    venue: str | None = None
    symbol: str | None = None


class SurveillanceAlert(Event, tag="surveillance_alert", kw_only=True):
    """A market-abuse pattern in our own orders and fills (`models.surveillance`).

    `kind`: `order_to_trade`, `cancel_ratio`, `message_rate` (quote stuffing), `wash_trade`,
    `spoofing` or `layering`. `value` is what was measured and `threshold` the configured
    limit it reached, over the last `window_ns`; `client_order_ids` are the orders involved
    (for the suspicious-order report). `alert_id` is deterministic from the input, so a
    replay raises the same ids.
    """

    alert_id: str
    ts: int
    account: str
    venue: str
    symbol: str
    kind: Literal[
        "order_to_trade", "cancel_ratio", "message_rate", "wash_trade", "spoofing", "layering"
    ]
    value: float
    threshold: float
    window_ns: int
    detail: str
    client_order_ids: list[str] = []

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"


class ControlCommand(Event, tag="control", kw_only=True):
    """An operator's command; `target` is `venue:symbol`, a venue, or `*` for everything.

    Schema v2 (`CONTROL_SCHEMA_VERSION`) adds the API's Ed25519 signature over every other
    field (`models.command_signing`): `nonce` makes each command unique, `key_id` names the
    signing key. A v1 command has none of them; it is still read, and never acted on.
    `trace_id` (optional, signed when present) is the W3C trace id of the API request that
    issued it: who acts on the command logs under it (connectors/trace_context.py).
    """

    v: int = 2  # CONTROL_SCHEMA_VERSION
    command_id: str
    ts: int
    issued_by: str
    action: Literal["pause", "resume", "reduce", "kill", "set_limits", "set_params"]
    target: str = "*"
    params: dict[str, str] = {}
    nonce: str | None = None
    key_id: str | None = None
    signature: str | None = None  # unpadded URL-safe base64 of the 64-byte signature
    trace_id: str | None = None

    @property
    def key(self) -> str:
        return self.target


class ControlAck(Event, tag="control_ack", kw_only=True):
    """A process's answer to one `ControlCommand`: applied or refused, and why.

    `issued_by` is what the command claims; it is the verified signer's claim only when
    `status` is `applied`. `state` is the process's control state after the command
    (unchanged when refused), so the latest ack says what the process runs now.
    """

    ts: int  # when the process decided
    process: str
    command_id: str
    issued_by: str
    action: str
    target: str
    status: Literal["applied", "refused"]
    reason: str | None = None
    state: dict[str, Any] = {}

    @property
    def key(self) -> str:
        # As `control` is keyed: the acks topic is compacted alike, so the latest ack of the
        # latest command per target and action is always kept.
        return f"{self.process}:{self.target}:{self.action}"


class QuotedThrough(Event, tag="quoted_through", kw_only=True):
    """Lockstep replays only (docs/paper-venue.md, "One engine"): the quote flow has quoted
    the instrument's market event received at `receive_ts`; every intent it triggered is
    before this mark on `orders.intents`."""

    venue: str
    symbol: str
    receive_ts: int

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"


class HeardThrough(Event, tag="heard_through", kw_only=True):
    """Lockstep replays only: the executor has matched the market event received at
    `receive_ts` (this instrument's) and published every fill our side had heard by then;
    the quote flow may now see that event. `final`: the market data has ended."""

    venue: str
    symbol: str
    receive_ts: int
    final: bool = False


# Marks of how far a lockstep replay has gone: not data, nothing records them.
LOCKSTEP_MARKS = (QuotedThrough, HeardThrough)

AnyMarketEvent = BookSnapshot | BookDelta | BBO | Trade
AnyEvent = (
    AnyMarketEvent
    | OrderIntent
    | QuotedThrough
    | OrderEvent
    | Fill
    | HeardThrough
    | Position
    | DeadLetter
    | ArbSignal
    | Prediction
    | RiskEvent
    | SurveillanceAlert
    | ControlCommand
    | ControlAck
)

def _levels_as_json(value: object) -> msgspec.Raw:
    # The text msgspec would write for the (Decimal, Decimal) pairs, without making them.
    if type(value) is Levels:
        return msgspec.Raw(value.json())
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def levels_to_builtins(value: object) -> list:
    """The `enc_hook` any other msgspec encoder (or `msgspec.to_builtins`) needs for events
    that carry `Levels`: the pairs' `str(Decimal)` texts, as `decimal_format="string"` writes
    the pairs themselves."""
    if type(value) is Levels:
        return value.texts()
    raise NotImplementedError(f"cannot convert {type(value).__name__}")


_encoder = msgspec.json.Encoder(decimal_format="string", enc_hook=_levels_as_json)
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> AnyEvent:
    return _decoder.decode(data)


def to_builtins(value: Any, *, str_keys: bool = False) -> Any:
    """`value` (an event, or anything holding events) as plain JSON values: `Decimal`s and
    `Levels` as the texts `encode` writes; `str_keys` turns non-string dict keys into text."""
    return msgspec.to_builtins(value, str_keys=str_keys, enc_hook=levels_to_builtins)
