"""The order executor: desired quotes in, venue requests out, every step audited.

Transport-agnostic: callers hand it `OrderIntent`s, `ControlCommand`s and the venue's pushed
events (`pump`), and it hands back `OrderEvent`s, `Fill`s and `RiskEvent`s through `emit`
and audit records through the store and `on_audit`. `flows/execute.py` wires it to queues;
Kafka attaches there. docs/executor.md states the rules; in short:

- an intent is dropped (audited, never acted on) when it is a duplicate, older than the last
  one of its instrument, older than `max_intent_age_ns`, for another venue or an unknown
  instrument, or when its instrument is HALTED;
- the intent is diffed against our quoting orders with the least churn (`models.execution.plan`);
  every order and amend passes the `RiskEngine` first, and a rejection is a `RiskEvent`;
- client order ids are deterministic from (intent id, side, level), and a create that failed
  ambiguously is looked up at the venue before it is sent again;
- only network errors are retried, with exponential backoff (a 429 holds the whole venue for
  its Retry-After); the venue's answers (`InvalidOrder`, `InsufficientFunds`) are final;
- the tracker turns repeated and reordered venue events into one transition each; fills are
  de-duplicated by trade id and kept in a `PositionLedger` per instrument that feeds risk;
- HALTED cancels every order in its scope, REDUCING those that add exposure, `kill` and
  `shutdown` also cancel whatever the venue reports open;
- after a restart, the last intent taken per strategy and instrument is acted on again
  (`resume`, `intent_resumed`): a kill may have come before its orders were sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import msgspec

from connectors.audit_store import AuditStore
from connectors.execution import eager
from connectors.execution.retry import RetryPolicy, with_retries
from connectors.execution.venue import NewOrder, Venue
from models.accounting import PositionLedger
from models.audit import AuditChain, AuditRecord
from models.events import (
    ControlCommand,
    Event,
    Fill,
    OrderEvent,
    OrderEventKind,
    OrderIntent,
    Position,
    RiskEvent,
)
from models.execution.client_ids import DEFAULT_PREFIX, client_order_id
from models.execution.dedupe import RecentKeys
from models.execution.orders import (
    CANCELED,
    OPEN,
    REJECTED,
    OrderTracker,
    TrackedOrder,
    VenueOrder,
)
from models.execution.past_run import PastRun
from models.execution.plan import Amendment, Placement, plan
from models.instrument import Instrument
from models.order_diff import Tolerance
from models.risk import OrderRequest, RiskContext, RiskEngine, TradingState
from models.risk.state import GLOBAL, scope_of

T = TypeVar("T")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    tolerance: Tolerance = field(default_factory=Tolerance)
    max_intent_age_ns: int = 2_000_000_000
    post_only: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # A pending order younger than this may still be on its way: reconciliation waits.
    arrival_grace_ns: int = 5_000_000_000
    client_id_prefix: str = DEFAULT_PREFIX
    # What the account held before the executor's first fill, for balance reconciliation.
    initial_balances: Mapping[str, Decimal] = field(default_factory=dict)
    memory: int = 100_000  # intents and trade ids remembered for de-duplication
    actor: str = "executor"


class Executor:
    def __init__(
        self,
        venue: Venue,
        instruments: Iterable[Instrument],
        risk: RiskEngine,
        *,
        emit: Callable[[Event], None],
        config: ExecutorConfig | None = None,
        clock: Callable[[], int] = time.time_ns,
        audit: AuditStore | None = None,
        on_audit: Callable[[AuditRecord], None] | None = None,
    ) -> None:
        self.venue = venue
        self.config = config = config if config is not None else ExecutorConfig()
        self.risk = risk
        self.tracker = OrderTracker(config.memory)
        self.instruments = {i.key: i for i in instruments if i.venue == venue.id}
        self.ledgers = {key: PositionLedger(i) for key, i in self.instruments.items()}
        self.balances: dict[str, Decimal] = {}  # the venue's, from the last reconciliation
        # Contracts the venue holds beyond our fills, per instrument key (the last
        # reconciliation's POSITION differences): risk counts them, the ledgers (PnL) do not.
        self.unbooked: dict[str, Decimal] = {}
        self._emit = emit
        self._clock = clock
        self._append = audit.append if audit is not None else AuditChain().append
        self._on_audit = on_audit
        # A store that keeps nothing (a backtest's) and no listener: records need not be made.
        self._audited = not getattr(audit, "discards", False) or on_audit is not None
        self._intents = RecentKeys(config.memory)
        self._trades = RecentKeys(config.memory)
        self._last_intent_ts: dict[tuple[str, str], int] = {}  # by (strategy, instrument)
        # Intents an earlier run took, to act on again once: id → generation of this resume.
        self._resumable: dict[str, int] = {}
        self._marks: dict[str, tuple[Decimal, int]] = {}  # reference mid and its book time
        self._amend = venue.supports_amend and venue.costs.amend_is_cheaper

    def clock(self) -> int:
        return self._clock()

    # -- audit and output --------------------------------------------------------------------

    def audit(self, action: str, payload: Any, ts: int | None = None) -> None:
        if not self._audited:
            return
        record = self._append(self._clock() if ts is None else ts, self.config.actor, action,
                              payload)
        if self._on_audit is not None:
            self._on_audit(record)

    def _publish(self, event: Event) -> None:
        self._emit(event)

    # -- intents -----------------------------------------------------------------------------

    async def on_intent(self, intent: OrderIntent) -> None:
        now = self._clock()
        generation = self._resumable.get(intent.intent_id, 0)
        reason = self._drop_reason(intent, now, resumed=generation > 0)
        if reason is not None:
            self.drop_intent(intent, reason)
            return
        # Recorded at the time it was judged by, so a restart can tell that it was not stale.
        if generation:
            del self._resumable[intent.intent_id]
            self.audit("intent_resumed", {"intent": intent, "generation": generation}, ts=now)
        else:
            self.audit("intent", intent, ts=now)
        key = intent.key
        self._last_intent_ts[(intent.strategy, key)] = intent.ts
        if intent.reference_mid is not None:
            book_ts = intent.trigger_receive_ts if intent.trigger_receive_ts else intent.ts
            self._marks[key] = (intent.reference_mid, book_ts)
        # Diffed against this strategy's quotes only; risk sees every order of the account on
        # the instrument, so no strategy's order can cross another's (SELF_TRADE).
        quoting = self.tracker.quoting(key, intent.strategy)
        actions = plan(intent, quoting, self.config.tolerance, self._amend)
        if not actions:
            return
        # Cancels need no risk check: they leave first (a stale quote is the one that gets
        # picked off), while the new orders are checked.
        sends: list[Awaitable[None]] = [
            asyncio.ensure_future(self._cancel(o, "REPLACED")) for o in actions.cancels
        ]
        if sends:
            await asyncio.sleep(0)
        # Orders moving away from the other side first: when the market jumps, the ask
        # moving up must leave before the bid follows, or the bid's check (rightly) finds
        # it would cross our own ask. Each amend and new order is checked when its turn
        # comes (`_gather` starts them in this order, each up to its first wait, and an
        # amend takes its new price before it waits), so a check sees the requests before
        # it: checked all at once up front, the bid was still checked against the ask's
        # old price, refused as SELF_TRADE and cancelled instead of moved.
        amends = actions.amends
        if len(amends) > 1:
            amends = sorted(amends, key=_moves_towards_the_other_side)
        sends.extend(self._amend_checked(intent, a, now) for a in amends)
        # A re-applied intent's new orders get ids of their own: its first ones may have been
        # sent, and filled or cancelled since, and a client id is never sent for two orders.
        ids_from = f"{intent.intent_id}/resume{generation}" if generation else intent.intent_id
        sends.extend(self._create_checked(intent, p, now, ids_from) for p in actions.places)
        await _gather(sends)

    def drop_intent(self, intent: OrderIntent, reason: str) -> None:
        """Audit an intent that is not acted on, and why."""
        generation = self._resumable.get(intent.intent_id, 0)
        if generation:  # still resumable: a copy of it read again may come next
            self.audit("intent_resumed", {"intent": intent, "generation": generation})
        else:
            self.audit("intent", intent)
        self.audit("intent_dropped", {"intent_id": intent.intent_id, "reason": reason})

    def _drop_reason(self, intent: OrderIntent, now: int, resumed: bool = False) -> str | None:
        # A resumed intent was taken by an earlier run (so its id is known) when it was fresh,
        # and stays the desired state until a newer one comes: its age is no reason to drop it.
        if not self._intents.add(intent.intent_id) and not resumed:
            return "DUPLICATE"
        if intent.venue != self.venue.id or intent.key not in self.instruments:
            return "UNKNOWN_INSTRUMENT"
        if not resumed and now - intent.ts > self.config.max_intent_age_ns:
            return "STALE"
        if intent.ts < self._last_intent_ts.get((intent.strategy, intent.key), 0):
            return "OUT_OF_ORDER"
        if self.risk.state(intent.venue, intent.symbol) is TradingState.HALTED:
            return "HALTED"
        return None

    def _risk_check(
        self, instrument: Instrument, side, size: Decimal, price: Decimal, now: int,
        open_orders: Iterable[TrackedOrder], client_order_id: str,
    ) -> bool:
        key = instrument.key
        mark = self._marks.get(key)
        decision = self.risk.check(
            OrderRequest(instrument, side, size, price, post_only=self.config.post_only),
            RiskContext(
                now, mid=mark[0] if mark else None, book_ts_ns=mark[1] if mark else None,
                position=self._risk_position(key), open_orders=open_orders,
            ),
        )
        if self._audited:  # the payload is not even made for a store that drops it
            self.audit("risk_decision", {
                "client_order_id": client_order_id, "accepted": decision.accepted,
                "reason_code": decision.reason_code, "detail": decision.detail,
            })
        self._drain_risk_now()
        return decision.accepted

    async def _create_checked(
        self, intent: OrderIntent, placement: Placement, now: int, ids_from: str
    ) -> None:
        """Risk-check when its turn comes, synchronously up to the send (so the next check
        sees this order), then send."""
        instrument = self.instruments[intent.key]
        cid = client_order_id(
            ids_from, placement.side, placement.level, self.config.client_id_prefix
        )
        quote = placement.quote
        if self.tracker.get(cid) is not None or not self._risk_check(
            instrument, placement.side, quote.size, quote.price, now,
            self.tracker.working(intent.key), cid,
        ):
            return
        order = TrackedOrder(
            client_order_id=cid, venue=instrument.venue, symbol=instrument.symbol,
            side=placement.side, price=quote.price, amount=quote.size, sent_ts=now,
            strategy=intent.strategy,
        )
        self.tracker.add(order)
        await self._create(order, intent.intent_id, intent.trigger_exchange_ts)

    async def _amend_checked(self, intent: OrderIntent, amendment: Amendment, now: int) -> None:
        """Risk-check when its turn comes (an amend before it has taken its new price),
        then amend, or cancel the order if refused."""
        order, quote = amendment.order, amendment.quote
        others = [o for o in self.tracker.working(intent.key) if o is not order]
        if not self._risk_check(
            self.instruments[intent.key], order.side, quote.size, quote.price, now, others,
            order.client_order_id,
        ):
            await self._cancel(order, "AMEND_REFUSED_BY_RISK")
            return
        await self._amend_order(
            order, quote.price, order.filled + quote.size, intent.trigger_exchange_ts
        )

    # -- requests ----------------------------------------------------------------------------

    async def call(self, request: Callable[[], Awaitable[T]], what: str, **kwargs) -> T:
        """A venue request with the executor's timeouts and retries; each failure audited."""

        def on_error(attempt: int, error: BaseException, delay: float) -> None:
            self.audit("request_retry", {
                "request": what, "attempt": attempt, "error": type(error).__name__,
                "message": str(error), "delay_s": delay,
            })

        return await with_retries(
            request, self.config.retry, on_error=on_error, on_rate_limited=self.venue.hold,
            **kwargs,
        )

    async def lookup(self, order: TrackedOrder) -> VenueOrder | None:
        venue, cid, symbol = self.venue, order.client_order_id, order.symbol
        return await self.call(lambda: venue.fetch_order(cid, symbol), f"fetch_order {cid}")

    async def _create(
        self, order: TrackedOrder, intent_id: str, trigger_exchange_ts: int | None = None
    ) -> None:
        request = NewOrder(
            order.client_order_id, order.symbol, order.side, order.amount, order.price,
            self.config.post_only, trigger_exchange_ts,
        )
        if self._audited:
            self.audit(
                "order_request", {"request": "create", "intent_id": intent_id, **_fields(request)}
            )
        venue = self.venue
        try:
            # Idempotent by its client id: after an ambiguous failure, look before resending.
            seen = await self.call(
                lambda: venue.create_order(request), f"create {order.client_order_id}",
                before_retry=lambda: self.lookup(order),
            )
        except ccxt.NetworkError as error:
            # Still PENDING: reconciliation finds it at the venue or declares it lost.
            self._audit_response("create", order, error=error, outcome="UNKNOWN")
            return
        except ccxt.BaseError as error:
            self._audit_response("create", order, error=error, outcome="REJECTED")
            if self.tracker.forget(order.client_order_id, REJECTED) is not None:
                self._publish(self._order_event(order, "reject", _reason(error)))
            return
        self._audit_response("create", order, seen=seen)
        self.apply_venue_order(seen, "response")

    async def _cancel(self, order: TrackedOrder, reason: str) -> None:
        order.cancel_requested = True
        cid = order.client_order_id
        if self._audited:
            self.audit(
                "order_request", {"request": "cancel", "client_order_id": cid, "reason": reason}
            )
        venue, symbol = self.venue, order.symbol
        try:
            seen = await self.call(lambda: venue.cancel_order(cid, symbol), f"cancel {cid}")
        except ccxt.OrderNotFound as error:
            self._audit_response("cancel", order, error=error, outcome="NOT_OPEN")
            await self._settle(order)
            return
        except ccxt.BaseError as error:
            # Not cancelled, as far as we know: the next diff or shutdown tries again.
            order.cancel_requested = False
            self._audit_response("cancel", order, error=error, outcome="FAILED")
            return
        self._audit_response("cancel", order, seen=seen)
        if seen is not None:
            self.apply_venue_order(seen, "response")

    async def _settle(self, order: TrackedOrder) -> None:
        """An order the venue says is not open: learn how it ended."""
        try:
            seen = await self.lookup(order)
        except ccxt.BaseError as error:
            self.audit("lookup_failed", {"client_order_id": order.client_order_id,
                                          "error": type(error).__name__, "message": str(error)})
            return  # reconciliation will ask again
        if seen is not None:
            self.apply_venue_order(seen, "query")
        elif self.tracker.forget(order.client_order_id, CANCELED) is not None:
            # The venue has never seen it: nothing can fill, nothing is left to cancel.
            self._publish(self._order_event(order, "cancel", "NEVER_ARRIVED"))

    async def _amend_order(
        self, order: TrackedOrder, price: Decimal, amount: Decimal,
        trigger_exchange_ts: int | None = None,
    ) -> None:
        cid = order.client_order_id
        if self._audited:
            self.audit("order_request", {"request": "amend", "client_order_id": cid,
                                         "price": price, "amount": amount})
        order.amend_from = (order.price, order.amount)
        order.price, order.amount = price, amount
        venue, symbol, side = self.venue, order.symbol, order.side
        try:
            seen = await self.call(
                lambda: venue.amend_order(cid, symbol, side, amount, price, trigger_exchange_ts),
                f"amend {cid}",
            )
        except ccxt.BaseError as error:
            # Refused or unknown: the order is as it was until the venue says otherwise.
            if order.amend_from is not None:
                order.price, order.amount = order.amend_from
                order.amend_from = None
            self._audit_response("amend", order, error=error, outcome="FAILED")
            if isinstance(error, ccxt.OrderNotFound):
                await self._settle(order)
            return
        self._audit_response("amend", order, seen=seen)
        if seen.status != OPEN or (seen.price, seen.amount) == (price, amount):
            # Venues that amend in place answer with the new order; the paper venue's answer
            # predates the amend's arrival and its event confirms it later.
            order.amend_from = None
            self.apply_venue_order(seen, "response")

    def _audit_response(
        self, request: str, order: TrackedOrder, *, seen: VenueOrder | None = None,
        error: BaseException | None = None, outcome: str = "OK",
    ) -> None:
        if not self._audited:
            return
        payload: dict[str, Any] = {"request": request, "client_order_id": order.client_order_id,
                                   "outcome": outcome}
        if seen is not None:
            payload["order"] = seen
        if error is not None:
            payload["error"] = type(error).__name__
            payload["message"] = str(error)
        self.audit("order_response", payload)

    # -- what the venue reports --------------------------------------------------------------

    async def pump(self) -> None:
        """Take the venue's pushed events and apply them."""
        events = await self.venue.poll_events()
        for event in events:
            if isinstance(event, Fill):
                self.apply_fill(event, "push")
            else:
                self.apply_order_event(event)
        await self.settle_risk()

    def apply_order_event(self, event: OrderEvent) -> None:
        news = self.tracker.apply(event)
        if self._audited:
            self.audit("order_event", {"event": event, "news": news, "source": "push"})
        if news:
            self._publish(event)

    def apply_venue_order(self, seen: VenueOrder, source: str) -> None:
        order = self.tracker.get(seen.client_order_id)
        kind = self.tracker.apply_venue_order(seen)
        if order is None or kind is None:
            return
        event = self._order_event(order, kind, None)
        if self._audited:
            self.audit("order_event", {"event": event, "news": True, "source": source})
        self._publish(event)

    def apply_fill(self, fill: Fill, source: str) -> bool:
        """Apply one execution once (by trade id); True when it was new."""
        news = self._trades.add((fill.venue, fill.trade_id))
        if not news:
            if source == "push" and self._audited:  # a repeat is worth a record; a re-read not
                self.audit("fill", {"fill": fill, "news": False, "source": source})
            return False
        if self._audited:
            self.audit("fill", {"fill": fill, "news": True, "source": source})
        ledger = self.ledgers.get(f"{fill.venue}:{fill.symbol}")
        if ledger is None:
            self.audit("fill_unknown_instrument", fill)
            return True
        ledger.apply(fill)
        self._publish(fill)
        self.risk.on_position(ledger.position(fill.ts, self._mark(ledger.instrument.key)))
        return True

    def adopt(self, seen: VenueOrder) -> TrackedOrder:
        """An order open at the venue that we did not know of: the venue's view wins."""
        order = TrackedOrder(
            client_order_id=seen.client_order_id, venue=self.venue.id, symbol=seen.symbol,
            side=seen.side, price=seen.price, amount=seen.amount, filled=seen.filled,
            status=OPEN, sent_ts=self._clock(), exchange_order_id=seen.exchange_order_id,
        )
        self.tracker.add(order)
        return order

    def lose(self, order: TrackedOrder) -> None:
        """A pending order the venue has never seen, long after it was sent."""
        if self.tracker.forget(order.client_order_id, REJECTED) is not None:
            self._publish(self._order_event(order, "reject", "LOST: never reached the venue"))

    def _order_event(self, order: TrackedOrder, kind: OrderEventKind, reason: str | None):
        return OrderEvent(
            venue=order.venue, symbol=order.symbol, ts=self._clock(), kind=kind,
            client_order_id=order.client_order_id, exchange_order_id=order.exchange_order_id,
            side=order.side, price=order.price, size=order.amount, filled=order.filled,
            remaining=order.remaining, reason=reason,
        )

    # -- risk states and control -------------------------------------------------------------

    async def on_command(self, command: ControlCommand) -> None:
        self.audit("control", command)
        accepted = self.risk.on_command(command)
        await self.settle_risk()
        if accepted and command.action == "kill":
            await self.cancel_all(command.target)

    def _drain_risk_now(self) -> list[RiskEvent]:
        if not self.risk.has_events:
            return []  # most checks accept: nothing to take
        events = self.risk.take_events()
        for event in events:
            self.audit("risk_event", event)
            self._publish(event)
        return events

    async def settle_risk(self) -> None:
        """Publish risk events and act on state changes: cancel what the new state forbids."""
        cancels = []
        for event in self._drain_risk_now():
            if event.kind != "state_change" or event.state == TradingState.ACTIVE:
                continue
            scope = scope_of(event.venue, event.symbol)
            halted = event.state == TradingState.HALTED
            cancels.extend(
                self._cancel(order, f"{event.state}:{event.reason_code}")
                for order in self._in_scope(scope)
                if not order.cancel_requested and (halted or self._adds_exposure(order))
            )
        await _gather(cancels)

    async def enforce_states(self) -> None:
        """Cancel what the scopes not ACTIVE forbid, as when they were entered: for the
        orders a restart adopted from the venue (a kill may have left them open in a scope
        that was halted, between the state change and its cancels)."""
        await _gather([
            self._cancel(order, f"{state}:ENFORCED")
            for scope, state in self.risk.scopes().items()
            for order in self._in_scope(scope)
            if not order.cancel_requested
            and (state == TradingState.HALTED or self._adds_exposure(order))
        ])

    def _in_scope(self, scope: str) -> list[TrackedOrder]:
        if scope == GLOBAL or scope == self.venue.id:
            return list(self.tracker)
        return list(self.tracker.working(scope))

    def _adds_exposure(self, order: TrackedOrder) -> bool:
        position = self._risk_position(order.instrument_key)
        return position >= 0 if order.side == "buy" else position <= 0

    def _risk_position(self, key: str) -> Decimal:
        """What we hold as far as risk is concerned: our fills, plus what the venue holds
        beyond them."""
        position = self.ledgers[key].quantity
        if self.unbooked:  # a lookup only while the venue disagrees
            position += self.unbooked.get(key, ZERO)
        return position

    async def open_at_venue(self, scope: str = GLOBAL) -> list[VenueOrder]:
        """What the venue reports open for our instruments in `scope`, one query per symbol
        (venues weigh an all-symbols query far heavier: Binance spot 80 against 6)."""
        venue = self.venue
        symbols = [
            i.symbol for key, i in self.instruments.items()
            if scope in (GLOBAL, venue.id, key)
        ]
        found: list[VenueOrder] = []
        for symbol in symbols:
            found.extend(await self.call(
                lambda symbol=symbol: venue.fetch_open_orders(symbol), "fetch_open_orders"
            ))
        return found

    async def cancel_all(self, scope: str = GLOBAL) -> None:
        """Cancel ours in `scope` and whatever else the venue reports open there (kill)."""
        try:
            open_orders = await self.open_at_venue(scope)
        except ccxt.BaseError as error:
            self.audit("cancel_all_lookup_failed", {"scope": scope, "error": str(error)})
            open_orders = []
        for seen in open_orders:
            if self.tracker.get(seen.client_order_id) is None:
                self.audit("reconcile", {"difference": "UNKNOWN_OPEN_ORDER", "order": seen})
                self.adopt(seen)
        await _gather([self._cancel(order, "CANCEL_ALL") for order in self._in_scope(scope)])

    async def shutdown(self) -> None:
        # The positions as this run leaves them: a restart continues from the same fills.
        self.audit("state", {"executor": "shutdown", "positions": self._quantities()})
        await self.cancel_all(GLOBAL)

    def fenced(self, reason: str) -> None:
        """The run's end when a newer executor took the account (its transport fenced this
        one): recorded with the positions as `shutdown` is, and nothing is sent. The orders
        open stay for the newer executor, which adopts them at its reconciliation."""
        self.audit("state", {"executor": "fenced", "reason": reason,
                             "positions": self._quantities()})

    def _quantities(self) -> dict[str, Decimal]:
        return {key: ledger.quantity for key, ledger in self.ledgers.items()}

    # -- positions ---------------------------------------------------------------------------

    def _mark(self, key: str) -> Decimal | None:
        mark = self._marks.get(key)
        return mark[0] if mark else None

    def positions(self) -> list[Position]:
        now = self._clock()
        return [ledger.position(now, self._mark(key)) for key, ledger in self.ledgers.items()]

    # -- restarts ----------------------------------------------------------------------------

    def resume(self, past: PastRun) -> list[OrderIntent]:
        """What earlier runs handled (`models.execution.past_run`, from the audit trail):
        those intents are not acted on again, those fills are in the positions already, and
        the trading states they left hold again (a kill survives a restart).

        Except the last intent taken per strategy and instrument: a kill may have come
        between its record and its orders, and nothing else would ever act on it (read again,
        it is a duplicate). Returned, in their triggers' order, to be handed in again like
        any intent, after the start-up reconciliation: each is a whole desired state, so its
        diff against what the venue holds sends only what is missing, through the risk checks.
        """
        self.risk.restore(past.trading_states)
        for intent_id in past.intent_ids:
            self._intents.add(intent_id)
        again = []
        for taken in past.last_intents.values():
            intent = taken.intent
            key = (intent.strategy, intent.key)
            self._last_intent_ts[key] = max(self._last_intent_ts.get(key, 0), intent.ts)
            if taken.recorded_ts - intent.ts > self.config.max_intent_age_ns:
                continue  # stale when recorded: a kill cut it off from its `intent_dropped`
            self._resumable[intent.intent_id] = taken.resumes + 1
            again.append(intent)
        touched = {}
        for fill in past.fills:
            ledger = self.ledgers.get(f"{fill.venue}:{fill.symbol}")
            if self._trades.add((fill.venue, fill.trade_id)) and ledger is not None:
                ledger.apply(fill)
                touched[ledger.instrument.key] = (ledger, fill.ts)
        for key, (ledger, ts) in touched.items():
            self.risk.on_position(ledger.position(ts, self._mark(key)))
        return sorted(again, key=lambda i: i.trigger_receive_ts or i.ts)

    def close_vanished(self, orders: Iterable[OrderEvent], reason: str) -> None:
        """Orders an earlier run left open at a venue that no longer has them (the paper
        venue lives in the executor's process): each gets its terminal `cancel`, so no order
        stays open on `orders.events` forever."""
        for last in orders:
            event = msgspec.structs.replace(
                last, kind="cancel", ts=max(last.ts, self._clock()), reason=reason
            )
            self.audit("order_event", {"event": event, "news": True, "source": "restart"})
            self._publish(event)


def _fields(request: NewOrder) -> dict[str, Any]:
    return {
        "client_order_id": request.client_order_id, "symbol": request.symbol,
        "side": request.side, "amount": request.amount, "price": request.price,
        "post_only": request.post_only,
    }


def _moves_towards_the_other_side(amendment: Amendment) -> bool:
    order, price = amendment.order, amendment.quote.price
    return price > order.price if order.side == "buy" else price < order.price


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


async def _gather(awaitables: list[Awaitable[None]]) -> None:
    if awaitables:
        await eager.gather(awaitables)  # requests that answer at once need no task
