"""The owner's exchange keys for a live venue: loaded from the secret store, reloaded on change.

The executor trades for one owner (`[execute] owner`, the Keycloak subject the control API
stores keys under), so it only ever asks the store for that owner's records: another
owner's keys are invisible to it by the store's own scoping, not by a filter here.

Change detection polls the store's listing (masked metadata, no secret is decrypted): the
key in use stays while it is stored; once it is deleted the owner's newest key for the
exchange takes over (a replacement is: add the new key, delete the old), and deleting the
last one leaves the venue without a key. `KeyedVenue` swaps the ccxt instance
when that key id changes; without a key every request fails with `ccxt.AuthenticationError`,
which the executor takes as the venue's final answer (a reject, never a retry).

Plaintext credentials live only in the ccxt instance: the listing, the audit records and
the errors here carry the key id and the masked api key. Every ccxt instance given a key
logs through `CCXT_LOGGER`, never ccxt's own: ccxt logs each request at DEBUG with its
headers, and most exchanges carry the api key in one (Binance's `X-MBX-APIKEY`), so a
process run at DEBUG would write the key into its logs (the canary test found it there).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import ccxt

from connectors.execution.venue import NewOrder, Venue
from connectors.secrets import ExchangeCredentials, SecretStore
from models.events import Fill, OrderEvent, Side
from models.execution.orders import VenueOrder
from models.execution.plan import RequestCosts

Connect = Callable[[ExchangeCredentials], Awaitable[Venue]]

# ccxt's warnings still come through; its DEBUG request and response lines never do, even
# when the root logger is at DEBUG (a logger's own level wins over its ancestors').
CCXT_LOGGER = logging.getLogger("quoteflow.ccxt")
CCXT_LOGGER.setLevel(logging.INFO)


class NoExchangeKey(RuntimeError):
    """The owner has no key for the exchange in the secret store: nothing to trade with."""


@dataclass(frozen=True, slots=True)
class KeyInUse:
    """Which stored key a venue signs with; safe to log and audit."""

    key_id: str
    api_key_masked: str


class OwnerKeys:
    """One owner's keys for one exchange, read from a secret store (blocking I/O)."""

    __slots__ = ("_store", "exchange", "owner")

    def __init__(self, store: SecretStore, owner: str, exchange: str) -> None:
        self._store = store
        self.owner = owner
        self.exchange = exchange

    def choose(self, in_use: KeyInUse | None) -> KeyInUse | None:
        """The key to sign with: the one in use while it is stored, else the newest.

        Creation times have whole seconds, so "newest" can be a tie; keeping the key in use
        makes a replacement explicit (add the new key, delete the old) and never a guess.
        """
        records = [r for r in self._store.list(self.owner) if r.exchange == self.exchange]
        if in_use is not None and any(r.key_id == in_use.key_id for r in records):
            return in_use
        if not records:
            return None
        # Listed by creation time within an exchange: the last one is the newest.
        return KeyInUse(records[-1].key_id, records[-1].api_key_masked)

    def credentials(self, key: KeyInUse) -> ExchangeCredentials:
        return self._store.get(self.owner, self.exchange, key.key_id)


class KeyedVenue:
    """A live venue that signs with the owner's current key and is rebuilt when it changes.

    `supports_amend` and `costs` are fixed at construction: the executor reads them once.
    """

    def __init__(
        self, venue_id: str, connect: Connect, costs: RequestCosts, *, supports_amend: bool
    ) -> None:
        self.id = venue_id
        self.costs = costs
        self.supports_amend = supports_amend
        self.holds_positions = True  # a live (ccxt) venue's account
        self.key: KeyInUse | None = None
        self._connect = connect
        self._venue: Venue | None = None

    async def use(self, key: KeyInUse | None, credentials: ExchangeCredentials | None) -> None:
        """Sign with `credentials` from now on (None: no key, every request is refused)."""
        fresh = None if credentials is None else await self._connect(credentials)
        old, self._venue, self.key = self._venue, fresh, key
        if old is not None:
            await old.close()
            # Closing disarmed the account's dead-man's switch (deadman.py) that the fresh
            # venue had just armed: arm it again now, not at its next keep-alive tick.
            switch = getattr(fresh, "deadman", None)
            if switch is not None:
                await switch.arm()

    def _live(self) -> Venue:
        if self._venue is None:
            raise ccxt.AuthenticationError(f"no exchange key for {self.id}: the owner has none")
        return self._venue

    async def create_order(self, order: NewOrder) -> VenueOrder:
        return await self._live().create_order(order)

    async def cancel_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        return await self._live().cancel_order(client_order_id, symbol)

    async def amend_order(
        self, client_order_id: str, symbol: str, side: Side, amount: Decimal, price: Decimal,
        trigger_exchange_ts: int | None = None,
    ) -> VenueOrder:
        return await self._live().amend_order(client_order_id, symbol, side, amount, price)

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        return await self._live().fetch_order(client_order_id, symbol)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return await self._live().fetch_open_orders(symbol)

    async def fetch_balance(self) -> dict[str, Decimal]:
        return await self._live().fetch_balance()

    async def fetch_positions(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        return await self._live().fetch_positions(symbols)

    async def fetch_my_trades(self, symbol: str, since_ns: int | None = None) -> list[Fill]:
        return await self._live().fetch_my_trades(symbol, since_ns)

    async def poll_events(self) -> list[OrderEvent | Fill]:
        return [] if self._venue is None else await self._venue.poll_events()

    def hold(self, seconds: float) -> None:
        if self._venue is not None:
            self._venue.hold(seconds)

    async def close(self, *, disarm: bool = True) -> None:
        if disarm:
            await self.use(None, None)
            return
        # Fenced: the account and its dead-man's switch are a newer process's now.
        venue, self._venue, self.key = self._venue, None, None
        if venue is not None:
            await venue.close(disarm=False)
