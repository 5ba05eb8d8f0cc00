"""The one async venue interface the executor trades through.

Two kinds implement it: `PaperVenueAdapter` (the simulated venue on the exchange clock)
and `CcxtVenue` (any exchange through `ccxt.async_support`). Failures are ccxt's exceptions
whichever the kind: `ccxt.NetworkError` and its family are worth a retry, every other
`ccxt.BaseError` is an answer (`InvalidOrder`, `InsufficientFunds`, `OrderNotFound`, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from models.events import Fill, OrderEvent, Side
from models.execution.orders import VenueOrder
from models.execution.plan import RequestCosts


@dataclass(frozen=True, slots=True)
class NewOrder:
    client_order_id: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    post_only: bool = True
    # The exchange time of the market event the order answers (a simulated venue reports it
    # with every fill; live venues ignore it).
    trigger_exchange_ts: int | None = None


class Venue(Protocol):
    id: str  # ccxt exchange id (the `venue` of events)
    costs: RequestCosts
    supports_amend: bool  # an in-place modify that keeps the client order id
    # Derivatives are positions the venue reports (`fetch_positions`) in an account whose
    # settlement-currency wallet moves by realized PnL − fees (a live futures account). False
    # on the paper venue, whose books are cash flows for every instrument
    # (connectors/paper/balances.py).
    holds_positions: bool

    async def create_order(self, order: NewOrder) -> VenueOrder: ...

    async def cancel_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """The order after the cancel, or None when the venue only took the request.

        Raises `ccxt.OrderNotFound` when the order is not open (finished or never arrived).
        """
        ...

    async def amend_order(
        self, client_order_id: str, symbol: str, side: Side, amount: Decimal, price: Decimal,
        trigger_exchange_ts: int | None = None,
    ) -> VenueOrder:
        """`amount` is the order's new total (filled included), as ccxt's editOrder."""
        ...

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """The order by our client id, or None when the venue has never seen it."""
        ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    async def fetch_balance(self) -> dict[str, Decimal]:
        """Total per currency; on a futures account the wallet balance (no unrealized PnL)."""
        ...

    async def fetch_positions(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """Signed contracts per symbol of `symbols` (derivatives), flat ones left out; asked
        only when `holds_positions`."""
        ...

    async def fetch_my_trades(self, symbol: str, since_ns: int | None = None) -> list[Fill]: ...

    async def poll_events(self) -> list[OrderEvent | Fill]:
        """Order events and fills the venue pushed since the last call (empty without a push
        channel: then reconciliation's queries find the changes)."""
        ...

    def hold(self, seconds: float) -> None:
        """Send nothing for `seconds` (a 429's Retry-After applies to the whole venue)."""
        ...

    async def close(self, *, disarm: bool = True) -> None:
        """Release the connection and, with `disarm`, the exchange-side dead-man's switch
        (connectors/execution/deadman.py). `disarm=False` when a newer process owns the account
        (this one was fenced): its countdown is armed by that one and must stay armed."""
        ...
