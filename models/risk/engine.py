"""The risk engine: pre-trade checks, post-trade monitors and the trading state machine.

Pure and single-threaded: the executor feeds it order requests, positions and control
commands with their event times, and drains the `RiskEvent`s it produced (every rejection,
state change and limit change) to publish and audit them. It never cancels anything itself:
a `state_change` to HALTED tells the executor to cancel every order in that scope, one to
REDUCING to cancel the orders that add exposure.
"""

from __future__ import annotations

from decimal import Decimal

from models.book_view import BookView
from models.events import ControlCommand, Position, RiskEvent, Side
from models.instrument import Instrument
from models.risk import pretrade, reasons
from models.risk.limits import LimitsError, RiskLimits
from models.risk.posttrade import PnlMonitor, TakerPriceRejected, taker_limit_price
from models.risk.pretrade import ACCEPTED, Decision, OrderRequest, OwnOrders, RiskContext
from models.risk.state import GLOBAL, TradingState, TradingStates, scope_of, split_scope

ZERO = Decimal(0)

_COMMAND_STATES = {
    "pause": (TradingState.HALTED, reasons.CMD_PAUSE),
    "kill": (TradingState.HALTED, reasons.CMD_KILL),
    "reduce": (TradingState.REDUCING, reasons.CMD_REDUCE),
}


class RiskEngine:
    __slots__ = ("_events", "_exposure", "_limits", "_pnl", "_rate", "_states", "_total_exposure")

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self._limits = limits if limits is not None else RiskLimits()
        self._states = TradingStates()
        self._rate = pretrade.OrderRateWindow()
        self._pnl = PnlMonitor()
        # Last known worst-case exposure (quote) per instrument, refreshed at each check of it.
        # Fills of working orders cannot raise it (they are already counted); price moves and
        # cancels change it, and the next check of that instrument catches up.
        self._exposure: dict[str, Decimal] = {}
        self._total_exposure = ZERO
        self._events: list[RiskEvent] = []

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    @property
    def pnl(self) -> PnlMonitor:
        return self._pnl

    def state(self, venue: str | None = None, symbol: str | None = None) -> TradingState:
        """The state an instrument (or a venue, or everything) trades under."""
        scope = scope_of(venue, symbol)
        if venue is None:
            return self._states.of_scope(GLOBAL)
        return self._states.effective(venue, scope)

    def scopes(self) -> dict[str, TradingState]:
        """Every scope that is not ACTIVE."""
        return self._states.scopes()

    def restore(self, scopes: dict[str, TradingState]) -> None:
        """The states an earlier run of the process left (read back from its audit trail):
        held again without a new event, since each was reported when it was entered."""
        for scope, state in scopes.items():
            self._states.escalate(scope, state)

    @property
    def has_events(self) -> bool:
        """Whether `take_events` would hand anything back."""
        return bool(self._events)

    def take_events(self) -> list[RiskEvent]:
        events, self._events = self._events, []
        return events

    # -- pre-trade ---------------------------------------------------------------------------

    def check(self, order: OrderRequest, context: RiskContext) -> Decision:
        """Accept or reject one order; an accepted order counts towards the order rate."""
        instrument = order.instrument
        key = instrument.key
        limits = self._limits.for_instrument(key)
        account = self._limits
        own = OwnOrders.of(context.open_orders)
        reduces = pretrade.reduces_exposure(context.position, own, order.side, order.size)
        state = self._states.effective(instrument.venue, key)
        decision = (
            pretrade.check_request(order)
            or pretrade.check_state(state, reduces)
            or pretrade.check_reduce_only(order, reduces)
            or pretrade.check_market_data(context, limits)
        )
        if decision is None:
            mid = context.mid
            assert mid is not None  # check_market_data refused a missing book
            others = self._refresh_exposure(key, context.position, own, mid, order.instrument)
            decision = (
                self._rate.check(
                    context.now_ns, account.max_order_rate, account.order_rate_window_ms
                )
                or pretrade.check_order_size(order, mid, limits)
                or pretrade.check_price_band(order, mid, limits)
                or pretrade.check_self_trade(order, own)
                or pretrade.check_min_spread(order, own, mid, limits)
                or pretrade.check_open_orders(own, limits)
                or self._check_positions(order, context, own, mid, others, reduces)
            )
        if decision is None:
            if account.max_order_rate is not None:
                self._rate.record(context.now_ns)
            return ACCEPTED
        self._emit(context.now_ns, "reject", decision.reason_code, decision.detail, key, state)
        return decision

    def _check_positions(
        self, order: OrderRequest, context: RiskContext, own: OwnOrders, mid: Decimal,
        others: Decimal, reduces: bool,
    ) -> Decision | None:
        if reduces:
            return None  # the way back under the position limits is always open
        # Each figure is worked out only when its limit is set: unset, its check passes.
        limits = self._limits.for_instrument(order.instrument.key)
        if limits.max_position is not None:
            worst = pretrade.worst_position(context.position, own, order.side, order.size)
            decision = pretrade.check_position(worst, limits)
            if decision is not None:
                return decision
        total_limit = self._limits.max_total_position
        if total_limit is None:
            return None
        if order.side == "buy":
            with_order = OwnOrders(own.count + 1, own.bought + order.size, own.sold, None, None)
        else:
            with_order = OwnOrders(own.count + 1, own.bought, own.sold + order.size, None, None)
        total = others + pretrade.exposure_notional(
            context.position, with_order, mid, order.instrument
        )
        return pretrade.check_total_position(total, total_limit)

    def _refresh_exposure(
        self, key: str, position: Decimal, own: OwnOrders, mid: Decimal, instrument: Instrument
    ) -> Decimal:
        """Store this instrument's exposure; return the exposure of all the others."""
        exposure = pretrade.exposure_notional(position, own, mid, instrument)
        others = self._total_exposure - self._exposure.get(key, ZERO)
        self._exposure[key] = exposure
        self._total_exposure = others + exposure
        return others

    def taker_limit_price(
        self, instrument: Instrument, side: Side, size: Decimal, book: BookView, now_ns: int,
        depth: int = 50,
    ) -> Decimal | None:
        """The limit price that turns a market order into a bounded IOC order, or None.

        None means the book cannot fill `size` within the instrument's `max_slippage_bps`;
        the rejection is recorded as a RiskEvent.
        """
        key = instrument.key
        limits = self._limits.for_instrument(key)
        try:
            return taker_limit_price(book, side, size, limits.max_slippage_bps, depth)
        except TakerPriceRejected as rejected:
            state = self._states.effective(instrument.venue, key)
            self._emit(now_ns, "reject", rejected.reason_code, rejected.detail, key, state)
            return None

    # -- post-trade --------------------------------------------------------------------------

    def on_position(self, position: Position) -> None:
        """Stop-loss of the instrument, then the account's daily loss and drawdown."""
        key = f"{position.venue}:{position.symbol}"
        ts = position.ts
        pnl = position.realized_pnl + position.unrealized_pnl - position.fees
        self._pnl.update(key, ts, pnl)
        stop_loss = self._limits.for_instrument(key).stop_loss
        if stop_loss is not None and -position.unrealized_pnl > stop_loss:
            self._escalate(
                ts, key, TradingState.REDUCING, reasons.STOP_LOSS,
                f"unrealized loss {-position.unrealized_pnl} beyond the stop-loss {stop_loss}",
            )
        daily_limit = self._limits.daily_loss_limit
        if daily_limit is not None and self._pnl.daily_loss > daily_limit:
            self._escalate(
                ts, GLOBAL, TradingState.HALTED, reasons.DAILY_LOSS,
                f"lost {self._pnl.daily_loss} since 00:00 UTC, limit {daily_limit}",
            )
        max_drawdown = self._limits.max_drawdown
        if max_drawdown is not None and self._pnl.drawdown > max_drawdown:
            self._escalate(
                ts, GLOBAL, TradingState.HALTED, reasons.MAX_DRAWDOWN,
                f"PnL {self._pnl.total} is {self._pnl.drawdown} below its peak "
                f"{self._pnl.peak}, limit {max_drawdown}",
            )

    # -- control -----------------------------------------------------------------------------

    def on_command(self, command: ControlCommand) -> bool:
        """Apply a control command; False when it was refused or is not the risk engine's."""
        if command.action == "set_params":
            return False  # strategy parameters belong to the quote flow
        by = f"by {command.issued_by} (command {command.command_id})"
        scope = command.target
        if not _valid_scope(scope):
            self._emit_scope(
                command.ts, "reject", reasons.CMD_REJECTED,
                f"{command.action} {by}: target {scope!r} is not '*', a venue or 'venue:symbol'",
                GLOBAL,
            )
            return False
        if command.action == "set_limits":
            return self._set_limits(command, by)
        if command.action == "resume":
            for resumed, previous in self._states.resume(scope):
                self._emit_scope(
                    command.ts, "state_change", reasons.CMD_RESUME,
                    f"{previous} → ACTIVE {by}", resumed,
                )
            return True
        state, reason = _COMMAND_STATES[command.action]
        if self._escalate(command.ts, scope, state, reason, f"{command.action} {by}"):
            return True
        current = self._states.of_scope(scope)
        if current is not state:
            self._emit_scope(
                command.ts, "reject", reasons.CMD_REJECTED,
                f"{command.action} {by}: {scope} is {current}, which only resume leaves", scope,
            )
            return False
        return True  # already in that state: repeating a command is harmless

    def _set_limits(self, command: ControlCommand, by: str) -> bool:
        try:
            self._limits = self._limits.updated(command.target, command.params)
        except LimitsError as error:
            self._emit_scope(
                command.ts, "reject", reasons.LIMITS_REJECTED, f"{error} ({by}); nothing changed",
                command.target,
            )
            return False
        changes = ", ".join(f"{k}={v}" for k, v in sorted(command.params.items()))
        self._emit_scope(
            command.ts, "limit_change", reasons.LIMITS_CHANGED, f"{changes} {by}", command.target
        )
        return True

    # -- events ------------------------------------------------------------------------------

    def _escalate(self, ts: int, scope: str, state: TradingState, reason: str, detail: str) -> bool:
        if not self._states.escalate(scope, state):
            return False
        self._emit_scope(ts, "state_change", reason, detail, scope)
        return True

    def _emit_scope(self, ts: int, kind: str, reason: str, detail: str, scope: str) -> None:
        venue, symbol = split_scope(scope)
        self._emit(ts, kind, reason, detail, scope, self.state(venue, symbol))

    def _emit(
        self, ts: int, kind: str, reason: str, detail: str, scope: str, state: TradingState
    ) -> None:
        venue, symbol = split_scope(scope)
        self._events.append(
            RiskEvent(
                ts=ts, kind=kind, reason_code=reason, detail=detail, state=state.value,
                venue=venue, symbol=symbol,
            )
        )


def _valid_scope(scope: str) -> bool:
    if scope == GLOBAL:
        return True
    venue, _, symbol = scope.partition(":")
    return bool(venue) and " " not in scope and (":" not in scope or bool(symbol))
