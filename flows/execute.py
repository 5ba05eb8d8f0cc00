"""The executor process: an asyncio service around `connectors.execution.executor.Executor`.

Wiring only. Not a Bytewax flow: every step of the executor awaits the venue (ccxt's async
API), and Bytewax operators are synchronous. Not faust-streaming either: docs/executor.md
gives the measurements and the reasons. It is a plain asyncio service with three tasks:

- the inbox consumer: `OrderIntent`s and `ControlCommand`s in arrival order, one at a time
  (a Kafka consumer, an in-memory test or the embedded run puts them in with `submit`); when a
  backlog holds several intents of one strategy for one instrument only the newest is acted
  on, since each is a full desired state (the older ones are audited as `SUPERSEDED`);
- the poller: the venue's pushed order events and fills, every `poll_interval_s` (none for
  the paper venue on the market's clock: whoever moves that clock pumps after each move, and
  a wall-clock poller would only race it);
- the reconciler: at start-up, then every `reconcile_interval_s`.

`run(stop)` returns after `stop` is set and the shutdown cancelled every order. `abandon()`
ends it without the shutdown, when the account is a newer executor's (this one was fenced):
its tasks are cancelled at once and nothing more goes to the venue, since a cancel-all would
take the newer executor's orders too. So does an error of a type given as `abandon_on` from
one of its tasks (the transport refusing the executor's output because it was fenced).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from connectors.execution.executor import Executor
from connectors.execution.reconcile import reconcile
from connectors.trace_context import traced
from models.events import ControlCommand, OrderIntent

_log = logging.getLogger(__name__)

Inbound = OrderIntent | ControlCommand
TRADES_MARGIN_NS = 60_000_000_000


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    poll_interval_s: float | None = 0.05  # None: no poller (the caller pumps)
    reconcile_interval_s: float = 30.0
    inbox_size: int = 10_000  # a full inbox makes `submit` wait: back-pressure on the source


class ExecutorService:
    def __init__(
        self, executor: Executor, config: ServiceConfig | None = None,
        abandon_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.executor = executor
        self.config = config if config is not None else ServiceConfig()
        self._inbox: asyncio.Queue[Inbound] = asyncio.Queue(self.config.inbox_size)
        self._last_reconcile_ns = 0
        self._abandon_on = abandon_on
        self._abandoned = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def abandon(self) -> None:
        """Stop at once, without the shutdown: the executor's tasks are cancelled now (none
        runs another step of its own), so no request is sent from here on."""
        self._abandoned.set()
        for task in self._tasks:
            task.cancel()

    async def submit(self, item: Inbound) -> None:
        await self._inbox.put(item)

    async def drained(self) -> None:
        """Return once the executor has acted on everything submitted so far (a Kafka
        consumer commits its offsets only then: at-least-once)."""
        await self._inbox.join()

    async def run(self, stop: asyncio.Event) -> None:
        executor = self.executor
        self._tasks = [asyncio.current_task()]  # abandoned during the start-up: cancelled
        await self._reconcile()
        # States restored from an earlier run (a kill survives a restart) hold for the orders
        # just adopted too: the kill may have come between a state change and its cancels.
        await executor.enforce_states()
        self._tasks = tasks = [
            asyncio.create_task(self._consume(), name="executor-inbox"),
            asyncio.create_task(self._every(self.config.reconcile_interval_s, self._reconcile),
                                name="executor-reconcile"),
        ]
        if self.config.poll_interval_s is not None:
            tasks.append(asyncio.create_task(
                self._every(self.config.poll_interval_s, executor.pump), name="executor-poll"))
        stopping = asyncio.create_task(stop.wait())
        abandoning = asyncio.create_task(self._abandoned.wait())
        await asyncio.wait([*tasks, stopping, abandoning], return_when=asyncio.FIRST_COMPLETED)
        for task in (*tasks, stopping, abandoning):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        errors = [task.exception() for task in tasks
                  if task.done() and not task.cancelled() and task.exception() is not None]
        if self._abandoned.is_set() or any(isinstance(e, self._abandon_on) for e in errors):
            for error in errors:
                if isinstance(error, self._abandon_on):
                    raise error
            return
        await executor.shutdown()
        await executor.pump()
        if errors:
            raise errors[0]  # a crashed task's error, after the orders are cancelled

    async def _consume(self) -> None:
        inbox, executor = self._inbox, self.executor
        while True:
            batch = [await inbox.get()]
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            # Newest per strategy and instrument: strategies sharing an account quote apart.
            newest = {
                (item.strategy, item.key): item for item in batch if isinstance(item, OrderIntent)
            }
            for item in batch:
                if isinstance(item, ControlCommand):
                    # Under the trace of the API request that issued it (docs/compliance.md).
                    with traced(item.trace_id):
                        _log.info("acting on control command %s: %s on %s by %s",
                                  item.command_id, item.action, item.target, item.issued_by)
                        await executor.on_command(item)
                elif newest[(item.strategy, item.key)] is item:
                    await executor.on_intent(item)
                else:
                    executor.drop_intent(item, "SUPERSEDED")
                inbox.task_done()

    async def _reconcile(self) -> None:
        # Trades since the previous pass, with a margin for venues that report them late.
        executor = self.executor
        now = executor.clock()
        since = self._last_reconcile_ns - TRADES_MARGIN_NS if self._last_reconcile_ns else None
        self._last_reconcile_ns = now
        await reconcile(executor, trades_since_ns=since)

    @staticmethod
    async def _every(interval_s: float, action) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await action()
