"""`quoteflow execute`: the executor as a Kafka process. Wiring only.

- In: `orders.intents` and `control` (one consumer, in arrival order) into the
  `ExecutorService` inbox; for the paper venue also `md.*` (a consumer of its own) into the
  paper venue and its books, so it matches our orders on the real market.
- Out: order events, fills, a `Position` after each fill and risk events onto their topics
  (`connectors.kafka.routing`); every audit record into the hash-chained file first and then
  onto the `audit` topic (the file is the record of truth, as for the control API). The file
  is also the outbox: each event is a `published` record before it is sent, and everything
  goes out in Kafka transactions (`KafkaOutput`), so a restart publishes exactly what its
  killed predecessor's aborted transaction held, from the file.
- Offsets are committed only after the executor acted on everything read (the service's
  inbox is drained), in the transaction of its output: a crash re-reads, never skips. What
  is read twice is recognised by the executor — the intent id (`DUPLICATE`), the intent's
  age (`STALE`) and the deterministic client order ids a venue refuses to open twice.
  Across restarts too: on start the executor reads its audit trail back
  (`models.execution.past_run`) for the intent ids it handled, the fills in its positions
  and the nonces of the commands it acted on; orders the last run left open at the paper
  venue (which lives in this process) are closed with a `cancel` (`VENUE_RESTARTED`); the
  last intent taken per strategy and instrument goes in again before anything read
  (`Executor.resume`), on the market clock at its trigger like any intent.

The paper venue runs on the market-data clock. An intent is released to the executor once
the market has reached the event that triggered it (`trigger_receive_ts`), so a replay
matches as the market was when the quote was decided; when the market data has nothing
more to give (read to its end, now) intents go through at once. Symmetrically the market
moves on without intents only while the intents are read to their end: two consumer groups
join at different speeds, and neither input may run ahead of the other meanwhile. Control
commands are operator actions and never wait; each must carry the control API's valid,
fresh, unused signature (`models.command_signing`, keys in `[commands]`), or it is refused:
audited and reported as a risk event, never acted on. The md.* topics are merged back
into receive order (`connectors.kafka.market_merge`: an event is released once every topic
has shown a later one or is read to its end), so the venue sees the market as a backtest
does.

A ccxt venue trades with the configured owner's key from the secret store
(`connectors.execution.keys`), re-read every `key_poll_interval_s`: when the key in use is
deleted the owner's newest other key replaces it; deleting the last one first cancels every
order (with the old key, still in memory) and then leaves the venue without one.

Fenced (`KafkaFenced`: a newer executor with this one's transactional and instance ids
started), the process stops without the shutdown: the account and its orders are the newer
executor's, so nothing more is sent to the venue (no cancel-all; a ccxt venue's dead-man's
switch stays armed) or to Kafka (the open transaction is aborted), and the trail ends with a
`state` record `fenced`, in the file only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from connectors.audit_store import AuditStore, read_audit, topic_links, unpublished_tail
from connectors.execution.config import ExecuteConfig
from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.keys import (
    CCXT_LOGGER,
    KeyedVenue,
    KeyInUse,
    NoExchangeKey,
    OwnerKeys,
)
from connectors.execution.live import CcxtVenue
from connectors.execution.rate_limiter import SimulatedRateLimiter
from connectors.kafka import EventConsumer, KafkaConfig, topic_name
from connectors.kafka.command_keys import CommandsConfig, load_verifier
from connectors.kafka.consumer import KafkaFenced
from connectors.kafka.market_merge import MarketMerge
from connectors.kafka.membership import Membership, carry_offsets, membership
from connectors.kafka.transactions import TransactionalProducer
from connectors.paper.adapter import PaperVenueAdapter
from connectors.paper.config import PaperConfig, paper_settings
from connectors.paper.market import PaperMarket
from connectors.paper.venue import PaperVenue
from connectors.secrets import ExchangeCredentials, SecretStoreError
from connectors.secrets.config import SecretsConfig, open_secret_store
from connectors.venues import order_params
from connectors.venues.market_cache import instrument_for
from flows.execute import ExecutorService, ServiceConfig
from flows.processes import MARKET_TOPICS
from models.audit import AuditRecord, canonical
from models.command_signing import CommandVerifier
from models.events import (
    ControlCommand,
    DeadLetter,
    Event,
    Fill,
    HeardThrough,
    MarketEvent,
    OrderIntent,
    QuotedThrough,
    RiskEvent,
    decode,
)
from models.execution.past_run import past_run
from models.execution.plan import UNIT_COSTS
from models.instrument import Instrument
from models.lockstep import LockstepError
from models.order_diff import Tolerance
from models.risk import RiskEngine, parse_limits


class ExecuteSettings(Protocol):
    """What `quoteflow execute` reads of the configuration (`quoteflow.config.Config`)."""

    kafka: KafkaConfig
    execute: ExecuteConfig | None
    risk: dict
    secrets: SecretsConfig
    paper: PaperConfig
    commands: CommandsConfig
    quote: Any  # its `[quote]` section: `top_of_book`, the book the paper venue matches on


ORDER_TOPICS = ("orders.intents", "control")
_POLL_MESSAGES = 2000
_POLL_TIMEOUT_S = 0.1
_NS_PER_S = 1_000_000_000
_VANISHED = "VENUE_RESTARTED: the paper venue's orders ended with the executor's process"
# The ACLs' group and transactional-id prefix; the group every deployment shared before each
# got its own (`membership`), whose offsets a deployment's new group takes over once.
ROLE = "executor"
PUBLISHED = "published"  # the audit record that holds an event sent to Kafka
# What happens without an intent (fills from the market, reconciliation, timers) is committed
# this often; intents' output with their offsets as soon as they are acted on.
_COMMIT_INTERVAL_S = 0.1


@dataclass(slots=True)
class ExecuteStats:
    intents: int = 0
    commands: int = 0
    market_events: int = 0
    dead_letters: int = 0
    refused_commands: int = 0  # unsigned, stale, replayed or badly signed
    resumed_intents: int = 0  # the last intents of the runs before, acted on again
    key_changes: list[str] = field(default_factory=list)  # key ids loaded, or "removed"


class KafkaOutput:
    """What the executor emits, onto Kafka: events to their topics, audit records to `audit`,
    all in the producer's current transaction.

    The audit file is the outbox: each event is first a `published` record holding it whole,
    then sent. A transaction carries the records and the events they hold, so what reached
    the `audit` topic (committed) is exactly what reached the other topics, and a restart
    publishes again the file's records past the anchored head and their events
    (`republish`): nothing a kill took from the producer is lost, nothing is sent twice.
    """

    __slots__ = ("_audit_topic", "_fenced", "_producer", "executor")

    def __init__(self, producer: TransactionalProducer, prefix: str) -> None:
        self._producer = producer
        self._audit_topic = topic_name(prefix, "audit")
        self._fenced = False
        self.executor: Executor | None = None  # set once built: positions come from its ledgers

    def abandon(self, fenced: KafkaFenced) -> None:
        """Fenced: nothing more goes out, the open transaction is aborted. Records appended
        to the file from now on stay there (the file is the outbox: a run that continues
        this file publishes them)."""
        self._fenced = True
        self._producer.abandon(fenced)

    def event(self, event: Event) -> None:
        self._publish(event)
        if type(event) is Fill and self.executor is not None:
            # The ledger has applied the fill: its position is the sum of fills so far.
            key = f"{event.venue}:{event.symbol}"
            for position in self.executor.positions():
                if f"{position.venue}:{position.symbol}" == key:
                    self._publish(position)

    def _publish(self, event: Event) -> None:
        # A dead letter is forwarded input, up to 64 KiB of it: kept out of the audit trail,
        # it goes out in the transaction as it is (a kill can forward it twice).
        if type(event) is not DeadLetter:
            self.executor.audit(PUBLISHED, {"event": event})  # type: ignore[union-attr]
        self._producer.send(event)

    def audit(self, record: AuditRecord) -> None:
        if self._fenced:
            return
        # Keyed by actor, as the API's records: one partition, the key is for filtering.
        self._producer.send_bytes(self._audit_topic, record.actor, canonical(record))

    def republish(self, records: list[AuditRecord]) -> None:
        """Records no committed transaction carried (a kill aborted it), with their events."""
        for record in records:
            self.audit(record)
            if record.action == PUBLISHED:
                self._producer.send(decode(canonical(record.payload["event"])))

    def commit(self, consumer: EventConsumer | None = None) -> None:
        self._producer.commit(consumer)

    def mark(self, mark: HeardThrough) -> None:
        """A lockstep replay's mark, in the transaction: not audited, it records no decision
        (how far the market was matched); the last one goes to every partition."""
        if mark.final:
            self._producer.send_to_every_partition(mark)
        else:
            self._producer.send(mark)


def paper_market(instruments: list[Instrument], config: ExecuteSettings) -> PaperMarket:
    """The paper venue on the md.* market's clocks, as a backtest runs it ([paper] settings),
    with the request budget of [execute]."""
    settings = paper_settings(config.paper)
    execute: ExecuteConfig = config.execute  # type: ignore[assignment]
    venue = PaperVenue(
        instruments, latency=settings.latency, queue_model=settings.queue_model,
        partial_fills=settings.partial_fills,
    )
    limiter = SimulatedRateLimiter.from_ccxt(
        execute.paper_rate_limit_ms, venue.local_now, execute.rate_limit_capacity
    )
    return PaperMarket(venue, PaperVenueAdapter(venue, execute.exchange, limiter), instruments,
                       top_of_book=config.quote.top_of_book)


def run_execute(
    config: ExecuteSettings,
    *,
    until_end: bool = False,
    stop: threading.Event | None = None,
    environ: Mapping[str, str] | None = None,
) -> ExecuteStats:
    """Run the executor until `stop` is set or, with `until_end`, the input topics are read
    to their end; then cancel every order and return. Blocks."""
    if config.execute is None:
        raise ValueError("the configuration has no [execute] section")
    return asyncio.run(_Process(
        config, until_end, stop or threading.Event(),
        os.environ if environ is None else environ,
    ).run())


class _Process:
    def __init__(
        self, config: ExecuteSettings, until_end: bool, stop: threading.Event,
        environ: Mapping[str, str],
    ) -> None:
        self.config = config
        self.settings: ExecuteConfig = config.execute  # type: ignore[assignment]
        self.until_end = until_end
        self.stop = stop
        self.environ = environ
        self.stats = ExecuteStats()
        exchange = self.settings.exchange
        self.instruments = [instrument_for(exchange, s) for s in self.settings.symbols]
        # The transactional id `<group>.<prefix>.<account>` as ever; the consumer group is
        # that id too unless `group` is set, and it is the static member's instance id.
        self.member: Membership = membership(
            self.settings.group or ROLE, config.kafka, self.settings.group)

    async def run(self) -> ExecuteStats:
        settings, kafka = self.settings, self.config.kafka
        # The secret store first: a wrong master key stops the process before any Kafka work.
        keys = self._owner_keys() if settings.venue == "ccxt" else None
        market = paper_market(self.instruments, self.config) if keys is None else None
        venue = market.adapter if market is not None else self._keyed_venue()
        audit_file = Path(settings.audit_path).expanduser()
        audit_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The file's lock first: a second executor started on it stops here, before its
        # producer would fence the one running (AuditStoreError, "open by another writer").
        audit = AuditStore(audit_file, sync_every=100)
        try:
            # Fences a killed predecessor (its open transaction is aborted) before the anchor
            # is read, so the anchor is exactly what its committed transactions published.
            producer = await asyncio.to_thread(
                TransactionalProducer, kafka, self.member.instance_id)
        except BaseException:
            audit.close()
            raise
        output = KafkaOutput(producer, kafka.prefix)
        executor: Executor | None = None
        fenced: KafkaFenced | None = None
        try:
            # The file continues its published chain or the process stops here: a file cut
            # short or rewritten would re-issue anchored records and forget handled intents.
            anchor = await asyncio.to_thread(topic_links, kafka)
            unpublished = unpublished_tail(audit_file, anchor)
            executor = Executor(
                venue, self.instruments, RiskEngine(parse_limits(self.config.risk)),
                emit=output.event, config=self._executor_config(),
                audit=audit, on_audit=output.audit,
                **({"clock": market.now_ns} if market is not None else {}),
            )
            output.executor = executor
            # What earlier runs handled, from the audit trail (the record of truth): their
            # intents are not acted on twice, their fills stay in the positions.
            past = past_run(read_audit(audit_file), executor.config.actor)
            resumed = executor.resume(past)
            verifier = load_verifier(self.config.commands)
            verifier.spend(past.command_nonces, time.time_ns())
            await self._publish_start(executor, output, unpublished)
            if market is not None and past.open_orders:
                executor.close_vanished(past.open_orders.values(), _VANISHED)
            if keys is not None:
                await self._load_key(executor, keys, first=True)
            await self._serve(executor, output, market, keys, verifier, resumed)
        except KafkaFenced as error:
            # A newer executor with this one's ids owns the account now: this run ends in
            # its trail, and the venue is left as it is, dead-man's switch armed (it is the
            # newer one's), since a cancel-all would take the newer one's orders too.
            fenced = error
            output.abandon(error)
            if executor is not None:
                executor.fenced(str(error))
            raise
        finally:
            await venue.close(disarm=fenced is None)
            audit.close()
            producer.close()
        return self.stats

    async def _publish_start(
        self, executor: Executor, output: KafkaOutput, unpublished: list[AuditRecord],
    ) -> None:
        """Publish what the last run's kill left unpublished (records and the events they
        hold), then this run's first record, committed before acting: so a file's chain is
        always on its anchor up to at most its last run's tail (`unpublished_tail`)."""
        output.republish(unpublished)
        executor.audit("state", {
            "executor": "start", "republished": len(unpublished),
            "from_seq": unpublished[0].seq if unpublished else None,
        })
        output.commit()

    def _executor_config(self) -> ExecutorConfig:
        settings = self.settings
        return ExecutorConfig(
            tolerance=Tolerance(Decimal(settings.price_tolerance),
                                Decimal(settings.size_tolerance)),
            max_intent_age_ns=int(settings.intent_max_age_s * _NS_PER_S),
            post_only=settings.post_only,
            initial_balances=settings.balances(),
        )

    # -- keys (ccxt venues) -------------------------------------------------------------------

    def _owner_keys(self) -> OwnerKeys:
        store = open_secret_store(self.config.secrets, self.environ)
        return OwnerKeys(store, self.settings.owner, self.settings.exchange)  # type: ignore[arg-type]

    def _keyed_venue(self) -> KeyedVenue:
        settings = self.settings

        async def connect(credentials: ExchangeCredentials) -> CcxtVenue:
            return await CcxtVenue.connect(
                settings.exchange, credentials, sandbox=settings.sandbox,
                config={**settings.ccxt_options, **credentials.to_ccxt_config(),
                        "logger": CCXT_LOGGER},
                supports_amend=settings.supports_amend, capacity=settings.rate_limit_capacity,
                deadman_timeout_s=settings.deadman_timeout_s, symbols=settings.symbols,
                order_params=order_params(settings.exchange, settings.self_trade_prevention),
            )

        return KeyedVenue(settings.exchange, connect, UNIT_COSTS,
                          supports_amend=settings.supports_amend)

    async def _load_key(self, executor: Executor, keys: OwnerKeys, *, first: bool) -> None:
        venue: KeyedVenue = executor.venue  # type: ignore[assignment]
        chosen = await asyncio.to_thread(keys.choose, venue.key)
        if chosen is None and first:
            raise NoExchangeKey(
                f"owner {keys.owner!r} has no {keys.exchange} key in the secret store"
            )
        if chosen == venue.key:
            return
        if chosen is None:
            await executor.cancel_all()  # while the old key can still cancel
            credentials = None
        else:
            credentials = await asyncio.to_thread(keys.credentials, chosen)
        await venue.use(chosen, credentials)
        self.stats.key_changes.append(_described(chosen))
        executor.audit("exchange_key", {
            "owner": keys.owner, "exchange": keys.exchange,
            "key_id": None if chosen is None else chosen.key_id,
            "api_key": None if chosen is None else chosen.api_key_masked,
        })

    async def _watch_keys(self, executor: Executor, keys: OwnerKeys) -> None:
        while True:
            await asyncio.sleep(self.settings.key_poll_interval_s)
            try:
                await self._load_key(executor, keys, first=False)
            except SecretStoreError as error:
                # A store that cannot be read now (Vault down, a rotation in progress) is not
                # a changed key: trading goes on with the one in use, and the next poll retries.
                executor.audit("exchange_key_unreadable", {
                    "owner": keys.owner, "exchange": keys.exchange,
                    "error": type(error).__name__,
                })

    # -- the loop -----------------------------------------------------------------------------

    async def _serve(
        self, executor: Executor, output: KafkaOutput, market: PaperMarket | None,
        keys: OwnerKeys | None, verifier: CommandVerifier, resumed: list[OrderIntent],
    ) -> None:
        kafka, member = self.config.kafka, self.member
        group = member.group_id
        if self.settings.group is None:
            # Upgraded from the group all deployments shared: its offsets, once.
            carried = await asyncio.to_thread(carry_offsets, kafka, ROLE, group, ORDER_TOPICS)
            if carried:
                executor.audit("group_offsets_carried", {
                    "from": ROLE, "to": group,
                    "offsets": {f"{p.topic}[{p.partition}]": p.offset for p in carried},
                })
        # End-of-partition events in every mode: `at_end` says an input is caught up, which
        # decides when the market may move without intents and intents without the market.
        # A static member (`membership`): a restarted executor takes its predecessor's place
        # and partitions at once, without a rebalance and without waiting out its session;
        # a second live one with its instance id fences it (`KafkaFenced` from `poll`).
        orders = EventConsumer(kafka, group, ORDER_TOPICS, eof=True,
                               **member.consumer_settings())
        # The paper venue's books and clock are rebuilt from the start of md.* on every run
        # (a group of its own that never commits): a book resumed mid-stream would wait
        # for a snapshot that may never come.
        md = (EventConsumer(kafka, f"{group}.market.{uuid.uuid4().hex[:12]}", MARKET_TOPICS,
                            eof=True)
              if market is not None else None)
        # The paper venue's clock is the market's: the feed pumps after every move of it
        # (`_advance_market`, `_let_time_pass`), so no wall-clock poller runs beside it.
        service_config = ServiceConfig(reconcile_interval_s=self.settings.reconcile_interval_s)
        if market is not None:
            service_config = dataclasses.replace(service_config, poll_interval_s=None)
        # Fenced, the executor's output is refused (`KafkaFenced` from an emit): the service
        # then stops without its shutdown, as when the feed or a commit hears it first.
        service = ExecutorService(executor, service_config, abandon_on=(KafkaFenced,))
        done = asyncio.Event()
        serving = asyncio.create_task(service.run(done), name="executor-service")
        helpers = [asyncio.create_task(_commit_every(output, _COMMIT_INTERVAL_S))]
        if keys is not None:
            helpers.append(asyncio.create_task(self._watch_keys(executor, keys)))
        feed = _Feed(self, service, executor, output, orders, md, market, verifier)
        feed.resume(resumed)
        feeding = asyncio.create_task(feed.run(), name="executor-feed")
        try:
            await asyncio.wait(
                [feeding, serving, *helpers], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            fenced = _fenced(serving, feeding, *helpers)
            if fenced is not None:
                # Before anything else runs: no request to the venue, nothing to Kafka.
                output.abandon(fenced)
                service.abandon()
            for task in (feeding, *helpers):
                task.cancel()
            done.set()
            results = await asyncio.gather(serving, feeding, *helpers, return_exceptions=True)
            if market is not None and fenced is None:
                # The paper venue ends with this process: what is in flight (the shutdown's
                # cancels) arrives and is heard, so no order stays open on orders.events.
                market.finish()
                await executor.pump()
            orders.close()
            if md is not None:
                md.close()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result


def _fenced(*tasks: asyncio.Task) -> KafkaFenced | None:
    """The fence one of the tasks ended with (its poll, its commit or its output refused)."""
    for task in tasks:
        if task.done() and not task.cancelled() and isinstance(task.exception(), KafkaFenced):
            return task.exception()  # type: ignore[return-value]
    return None


async def _commit_every(output: KafkaOutput, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        output.commit()


def _described(key: KeyInUse | None) -> str:
    return "removed" if key is None else key.key_id


class _Feed:
    """Kafka in: intents and commands to the service, market data to the paper venue."""

    def __init__(self, process: _Process, service: ExecutorService, executor: Executor,
                 output: KafkaOutput, orders: EventConsumer, md: EventConsumer | None,
                 market: PaperMarket | None, verifier: CommandVerifier):
        self.process = process
        self.verifier = verifier
        self.stats = process.stats
        self.service = service
        self.executor = executor
        self.output = output
        self.orders = orders
        self.md = md
        self.market = market
        self.pending: deque[Event] = deque()
        # md.* back in receive order across topics (each poll brings what it likes).
        self.market_buffer = MarketMerge(md.caught_up if md is not None else _always)
        # The market was found idle (read to its end) with requests in flight at the paper
        # venue, and no market event has come since.
        self.idle = False
        self.resuming = 0  # how many of the first intents pending are the last run's

    def resume(self, intents: list[OrderIntent]) -> None:
        """The last intents the runs before took go first, released as any intent is: at
        their trigger on the paper venue's market clock, at once to a live venue (the
        service acts on them after its start-up reconciliation)."""
        self.pending.extendleft(reversed(intents))
        self.resuming += len(intents)

    async def run(self) -> None:
        if self.process.settings.lockstep:
            await self._run_lockstep()
            return
        process, pending = self.process, self.pending
        while not process.stop.is_set():
            if not pending:
                read = await asyncio.to_thread(self.orders.poll, _POLL_MESSAGES, _POLL_TIMEOUT_S)
                pending.extend(self._readable(read))
                if not pending:
                    # The market moves on alone only once every intent so far has been read:
                    # a consumer still joining its group reads nothing, and a market run ahead
                    # of its intents would make them stale (the flaky test of issue 11).
                    caught_up = self.orders.at_end
                    exhausted = await self._advance_market(None) if caught_up else False
                    if process.until_end and caught_up and exhausted:
                        return
                    if exhausted:
                        await self._let_time_pass()
                    continue
            await self._release()
            await self.service.drained()
            if not pending:
                # The executor acted on everything read: its output and the offsets, at once.
                self.output.commit(self.orders)

    def _readable(self, events: list[Event]) -> list[Event]:
        # Undecodable input goes to the dead-letter topic; the executor sees only events.
        readable = []
        for event in events:
            if type(event) is DeadLetter:
                self.stats.dead_letters += 1
                self.output.event(event)
            else:
                readable.append(event)
        return readable

    async def _run_lockstep(self) -> None:
        """A replay in turns with the quote flow (`[quote] lockstep`, `models.lockstep`).

        Ours: match the next market event, hear what it did (`pump`, as the backtest does
        after each event) and publish the fills with a `HeardThrough` mark, in one
        transaction. Then the quote flow's: it sees the event, quotes, and marks it
        `QuotedThrough` after its intents, which are acted on as they come (their market is
        the event just matched). An intent can only be released on the market it was
        decided on, so no event is matched before the last one was quoted."""
        process, pending, orders = self.process, self.pending, self.orders
        awaiting: tuple[str, str, int] | None = None  # the event the quote flow must quote
        while not process.stop.is_set():
            if pending or awaiting is not None:
                if not pending:
                    read = await asyncio.to_thread(orders.poll, _POLL_MESSAGES, _POLL_TIMEOUT_S)
                    pending.extend(self._readable(read))
                awaiting = await self._release_quoted(awaiting)
                await self.service.drained()
                if awaiting is not None or pending:
                    continue
            event = await self._next_market_event()
            if event is None:
                if process.until_end:
                    self.output.mark(HeardThrough(venue="", symbol="", receive_ts=0, final=True))
                    self.output.commit(orders)
                    return
                await asyncio.sleep(_POLL_TIMEOUT_S)
                continue
            self.stats.market_events += self.market.apply(event)  # type: ignore[union-attr]
            await self.executor.pump()
            self.output.mark(HeardThrough(venue=event.venue, symbol=event.symbol,
                                          receive_ts=event.receive_ts))
            self.output.commit(orders)
            awaiting = (event.venue, event.symbol, event.receive_ts)

    async def _release_quoted(
        self, awaiting: tuple[str, str, int] | None
    ) -> tuple[str, str, int] | None:
        """Release what was read up to the quote flow's mark of `awaiting` (None once it
        came); a mark of any other event means the two do not replay the same market."""
        pending = self.pending
        while pending:
            item = pending[0]
            if type(item) is QuotedThrough:
                pending.popleft()
                quoted = (item.venue, item.symbol, item.receive_ts)
                if quoted != awaiting:
                    raise LockstepError(f"the quote flow quoted {quoted}, the executor matched "
                                        f"{awaiting} last")
                return None
            await self._release_one(item)
        return awaiting

    async def _next_market_event(self) -> MarketEvent | None:
        """The next market event in receive order; None once md.* is read to its end."""
        md, buffer = self.md, self.market_buffer
        while not buffer:
            read = self._readable(
                await asyncio.to_thread(md.poll, _POLL_MESSAGES, _POLL_TIMEOUT_S)  # type: ignore[union-attr]
            )
            buffer.extend(read)
            if not read and not buffer and md.at_end:  # type: ignore[union-attr]
                return None
        return buffer.popleft()  # type: ignore[return-value]

    async def _release_one(self, item: Event) -> None:
        """The first pending intent or command, to the service (its market is reached)."""
        self.pending.popleft()
        stats = self.stats
        if type(item) is OrderIntent:
            if self.resuming:
                self.resuming -= 1
                stats.resumed_intents += 1
            else:
                stats.intents += 1
        elif type(item) is ControlCommand:
            stats.commands += 1
            # Operators' commands are checked on the wall clock, not the market's.
            reason = self.verifier.refusal(item, time.time_ns())
            if reason is not None:
                self._refuse(item, reason)
                return
        await self.service.submit(item)  # type: ignore[arg-type]
        if self.market is not None:
            # On the market clock the executor acts before the market moves on; a live
            # venue's backlog instead goes in at once, and only its newest intents count.
            await self.service.drained()

    async def _release(self) -> None:
        pending = self.pending
        while pending:
            item = pending[0]
            if type(item) is QuotedThrough:
                pending.popleft()  # a lockstep quote flow's mark: nothing waits for it here
                continue
            if type(item) is OrderIntent and not await self._advance_market(
                item.trigger_receive_ts or item.ts
            ):
                return  # the market has more to show before this intent
            await self._release_one(item)

    def _refuse(self, command: ControlCommand, reason: str) -> None:
        """Audit and report a command that is not acted on. Only bounded fields are kept: the
        command is the attacker's."""
        self.stats.refused_commands += 1
        executor = self.executor
        claimed = {"command_id": command.command_id[:64], "action": command.action,
                   "target": command.target[:200], "issued_by": command.issued_by[:200],
                   "ts": command.ts, "key_id": (command.key_id or "")[:64]}
        executor.audit("command_refused", {"reason": reason, "command": claimed})
        self.output.event(RiskEvent(
            ts=executor.clock(), kind="reject", reason_code=f"command_{reason}",
            detail=f"{command.action} on {claimed['target']!r} claimed by "
                   f"{claimed['issued_by']!r} refused: {reason}",
            state=executor.risk.state().value,
        ))

    async def _advance_market(self, due: int | None) -> bool:
        """Apply market events up to `due`; with None, those of one more poll.

        True when the market reached `due` or has nothing more to give now (read to its
        end); False when it must be read further first.
        """
        market, md, buffer = self.market, self.md, self.market_buffer
        if market is None or md is None:
            return True
        applied = False
        while True:
            # Or-ed over the reads: events applied before a read that brings only later ones
            # must still be heard before the intent (a lost flag left that to the wall-clock
            # poller, racing the intent: the flaky one-engine test of 9be4d40's CI run).
            applied = self._apply_until(due) or applied
            if buffer:  # the next market event is after `due`
                reached = True
                break
            read = self._readable(
                await asyncio.to_thread(md.poll, _POLL_MESSAGES, _POLL_TIMEOUT_S)
            )
            if not read:
                # Nothing now is the market's present only once it was read to its end; a
                # consumer still joining its group reads nothing from a market in full flow.
                # Reading to the end may have released what the merge held back.
                applied = self._apply_until(due) or applied
                reached = bool(buffer) or md.at_end
                break
            buffer.extend(read)
            if due is None:
                applied = self._apply_until(None) or applied
                reached = False
                break
        if applied:
            await self.executor.pump()  # what the market did to our orders, before deciding
        return reached

    def _apply_until(self, due: int | None) -> bool:
        buffer, apply, applied = self.market_buffer, self.market.apply, 0  # type: ignore[union-attr]
        while buffer and (due is None or buffer[0].receive_ts <= due):
            applied += apply(buffer.popleft())
        self.stats.market_events += applied
        if applied:
            self.idle = False
        return applied > 0

    async def _let_time_pass(self) -> None:
        """The market is idle (read to its end) with requests in flight at the paper venue: if
        it still is a whole poll later, they arrive as at the market's end (`finish`: the
        clocks move only as far as the requests need), so a cancel sent after a replay ended
        (a kill) still completes, and later intents are not made stale by it."""
        market = self.market
        if market is None or not market.venue.in_flight:
            self.idle = False
            return
        if not self.idle:
            self.idle = True
            return
        self.idle = False
        market.finish()
        await self.executor.pump()


def _always(_topic: str) -> bool:
    return True
