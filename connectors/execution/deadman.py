"""The exchange-side dead-man's switch: the venue cancels our orders if we stop calling.

Where a venue offers one, the executor arms a countdown through ccxt and re-arms it every
third of the timeout; a process that dies (SIGKILL, a lost host, a hung event loop) stops
re-arming and the exchange itself cancels its orders when the countdown runs out. A clean
shutdown disarms it (timeout 0) after the executor's own cancel-all. A fenced executor (a
newer one took its account) only stops re-arming: the countdown is the newer one's now, and
disarming it would leave that one's orders unguarded.

Which venue has which call is this module's table and nowhere else. Each entry is a ccxt
implicit API method (the raw endpoint, so what is sent is exactly the venue's documented
request), whether it is per symbol (Binance's countdown is) or per account, its timeout
parameter and unit, and the venue's accepted range.

Not in the table:
- Bybit's DCP (`POST /v5/order/disconnected-cancel-all`) fires when the private WebSocket
  disconnects; this executor trades over REST and holds no such connection, so arming it
  would protect nothing.
- Venues without such a call: there the executor's own reconciliation and kill switch are
  the only protection (logged at start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadManCall:
    method: str  # ccxt implicit API method
    timeout_param: str
    unit_s: float  # seconds per unit of the timeout parameter (0.001: milliseconds)
    min_s: float  # the venue's accepted range for a non-zero timeout
    max_s: float
    per_symbol: bool = False  # one countdown per market id (`symbol` parameter)
    extra: dict[str, Any] = field(default_factory=dict)

    def request(self, timeout_s: float, market_id: str | None = None) -> dict[str, Any]:
        """The call's parameters; timeout 0 disarms."""
        params: dict[str, Any] = {**self.extra, self.timeout_param: round(timeout_s / self.unit_s)}
        if self.per_symbol:
            params["symbol"] = market_id
        return params


DEADMAN_CALLS: dict[str, DeadManCall] = {
    # POST /fapi/v1/countdownCancelAll {symbol, countdownTime ms}; heartbeats replace it.
    "binanceusdm": DeadManCall("fapiPrivatePostCountdownCancelAll", "countdownTime", 0.001,
                               min_s=1, max_s=86_400, per_symbol=True),
    # POST /dapi/v1/countdownCancelAll, the same for COIN-M.
    "binancecoinm": DeadManCall("dapiPrivatePostCountdownCancelAll", "countdownTime", 0.001,
                                min_s=1, max_s=86_400, per_symbol=True),
    # POST /0/private/CancelAllOrdersAfter {timeout s}; Kraken advises 60 s, re-armed 15-30 s.
    "kraken": DeadManCall("privatePostCancelAllOrdersAfter", "timeout", 1, min_s=1,
                          max_s=86_400),
    # Kraken Futures: POST /derivatives/api/v3/cancelallordersafter {timeout s}.
    "krakenfutures": DeadManCall("privatePostCancelallordersafter", "timeout", 1, min_s=1,
                                 max_s=86_400),
    # OKX: POST /api/v5/trade/cancel-all-after {timeOut s}, 10-120 s.
    "okx": DeadManCall("privatePostTradeCancelAllAfter", "timeOut", 1, min_s=10, max_s=120),
}


def check_timeout(exchange_id: str, timeout_s: float) -> None:
    """ValueError unless the venue takes this timeout (0, or any where it has no switch)."""
    call = DEADMAN_CALLS.get(exchange_id)
    if call is not None and timeout_s != 0 and not call.min_s <= timeout_s <= call.max_s:
        raise ValueError(
            f"{exchange_id}'s dead-man's switch takes {call.min_s:g} to {call.max_s:g} s, "
            f"not {timeout_s:g} (execute.deadman_timeout_s)")


class DeadManSwitch:
    """One venue's countdown: `arm()`, then `keep_alive()` as a task, `disarm()` at the end."""

    def __init__(self, exchange: Any, call: DeadManCall, timeout_s: float,
                 market_ids: Sequence[str] = ()) -> None:
        if timeout_s <= 0:
            raise ValueError("a dead-man's switch needs a timeout > 0")
        check_timeout(exchange.id, timeout_s)
        if call.per_symbol and not market_ids:
            raise ValueError(f"{exchange.id}'s dead-man's switch is per symbol: name them")
        self.exchange = exchange
        self.call = call
        self.timeout_s = timeout_s
        self.refresh_s = timeout_s / 3  # one failed or late re-arm is survived
        self._targets: list[str | None] = list(market_ids) if call.per_symbol else [None]
        self.armed = False

    @classmethod
    def for_exchange(cls, exchange: Any, timeout_s: float,
                     symbols: Sequence[str] = ()) -> DeadManSwitch | None:
        """The switch for a ccxt exchange with loaded markets; None where the venue has none."""
        call = DEADMAN_CALLS.get(exchange.id)
        if call is None or timeout_s <= 0:
            if timeout_s > 0:
                log.warning("%s has no exchange-side dead-man's switch: a dead executor's "
                            "orders stay open until reconciled", exchange.id)
            return None
        market_ids = [exchange.market_id(symbol) for symbol in symbols]
        return cls(exchange, call, timeout_s, market_ids)

    async def _send(self, timeout_s: float) -> None:
        method = getattr(self.exchange, self.call.method)
        for target in self._targets:
            await method(self.call.request(timeout_s, target))

    async def arm(self) -> None:
        """Start (or restart) the countdown; raises what ccxt raises."""
        await self._send(self.timeout_s)
        self.armed = True

    async def keep_alive(self) -> None:
        """Re-arm every `refresh_s` until cancelled. A failed re-arm is logged and retried at
        the next tick; the countdown still running covers the gap."""
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.arm()
            except ccxt.BaseError as error:
                log.warning("%s: re-arming the dead-man's switch failed (%s: %s); "
                            "retrying in %.1f s", self.exchange.id, type(error).__name__,
                            error, self.refresh_s)

    async def disarm(self) -> None:
        """Stop the countdown (clean shutdown); a failure is logged, never raised."""
        if not self.armed:
            return
        try:
            await self._send(0)
            self.armed = False
        except ccxt.BaseError as error:
            log.warning("%s: disarming the dead-man's switch failed (%s): the venue will "
                        "cancel the remaining orders when the countdown runs out",
                        self.exchange.id, type(error).__name__)


async def stop(
    switch: DeadManSwitch, task: asyncio.Task | None, *, disarm: bool = True
) -> None:
    """Cancel the keep-alive task, then disarm (unless `disarm` is False: the account's
    countdown belongs to a newer process, which keeps it armed)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if disarm:
        await switch.disarm()
