"""Market-abuse surveillance of our own orders and fills, per account and instrument. Pure.

`InstrumentSurveillance` reads one instrument's `OrderEvent`s and `Fill`s (as `orders.events`
carries them, in order) and raises `SurveillanceAlert`s:

- `order_to_trade`: orders (new and amended) per execution over the last `window_s`;
- `cancel_ratio`: cancels per order over the last `window_s`;
- `message_rate`: order messages (new, amend, cancel) in any `stuffing_window_s` (quote
  stuffing);
- `wash_trade`, `spoofing`, `layering`: incidents, found by `models.surveillance_patterns`.

The ratios mean nothing over a handful of orders, so they are judged only once the window
holds `min_orders`; each ratio alert holds for `cooldown_s` before the same kind is raised
again for the instrument. Time is the events' own (`ts`): a replay raises the same alerts.
Thresholds are the `[surveillance]` configuration section (`SurveillanceConfig`); the
defaults and the false-positive rate measured with them are in docs/surveillance.md.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable

import msgspec

from models.events import Fill, OrderEvent, SurveillanceAlert
from models.surveillance_patterns import Incident, PatternDetector

NS_PER_S = 1_000_000_000


class SurveillanceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The `[surveillance]` section: every detector's threshold (docs/surveillance.md)."""

    account: str = ""  # named on the alerts; "" takes the deployment's `[kafka] account`
    window_s: float = 300.0  # the ratios' sliding window
    min_orders: int = 500  # orders in the window before a ratio is judged
    max_order_to_trade: float = 500.0
    # A market maker cancels or amends nearly every order it places: the ratio is near 1 by
    # nature on venues without amend, so only an extreme one is worth an alert.
    max_cancel_ratio: float = 0.99
    stuffing_window_s: float = 1.0
    max_messages: int = 500  # order messages in any `stuffing_window_s`
    # Opposite fills of the same price and size this close together are a wash.
    wash_window_ms: float = 100.0
    # Large: at least this multiple of the median size of our recent orders.
    large_order_multiple: float = 5.0
    # A large order cancelled unfilled within this of its acknowledgement is a spoof
    # candidate, and it counts when we traded on the other side during its life.
    spoof_max_lifetime_s: float = 30.0
    layering_min_orders: int = 3  # large orders at distinct prices on one side: layering
    cooldown_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("window_s", "stuffing_window_s", "max_order_to_trade", "wash_window_ms",
                     "large_order_multiple", "spoof_max_lifetime_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"surveillance.{name} must be > 0")
        if not 0 < self.max_cancel_ratio <= 1:
            raise ValueError("surveillance.max_cancel_ratio must be in (0, 1]")
        for name in ("min_orders", "max_messages", "layering_min_orders"):
            if getattr(self, name) < 1:
                raise ValueError(f"surveillance.{name} must be >= 1")
        if self.cooldown_s < 0:
            raise ValueError("surveillance.cooldown_s must be >= 0")


# What each order event is for the counts: a new order, an amend, a cancel, or nothing.
_NEW, _AMEND, _CANCEL = "new", "amend", "cancel"
_COUNTED = {"ack": _NEW, "reject": _NEW, "amend": _AMEND, "cancel": _CANCEL}


class _Window:
    """Counts of timestamped items of a few kinds over a sliding window."""

    __slots__ = ("counts", "items", "span_ns")

    def __init__(self, span_ns: int) -> None:
        self.span_ns = span_ns
        self.items: deque[tuple[int, str]] = deque()
        self.counts: dict[str, int] = {}

    def add(self, ts: int, kind: str) -> None:
        self.items.append((ts, kind))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.expire(ts)

    def expire(self, now: int) -> None:
        items, counts, start = self.items, self.counts, now - self.span_ns
        while items and items[0][0] <= start:
            _, kind = items.popleft()
            counts[kind] -= 1

    def count(self, *kinds: str) -> int:
        return sum(self.counts.get(kind, 0) for kind in kinds)


class InstrumentSurveillance:
    """One instrument's detectors; `on_event` → the alerts the event raises (a keyed state of
    `flows.operators.per_key_state`, snapshotted by Bytewax)."""

    def __init__(self, venue: str, symbol: str, account: str, config: SurveillanceConfig):
        self.venue, self.symbol, self.account, self.config = venue, symbol, account, config
        self._ratios = _Window(int(config.window_s * NS_PER_S))
        self._messages = _Window(int(config.stuffing_window_s * NS_PER_S))
        self._patterns = PatternDetector(config)
        self._last_alert: dict[str, int] = {}

    def on_event(self, event) -> list[SurveillanceAlert]:
        if isinstance(event, OrderEvent):
            return self._on_order_event(event)
        if isinstance(event, Fill):
            self._ratios.add(event.ts, "trade")
            return self._incidents(self._patterns.on_fill(event))
        return []  # position samples and anything else say nothing about abuse

    def _on_order_event(self, event: OrderEvent) -> list[SurveillanceAlert]:
        counted = _COUNTED.get(event.kind)
        if counted is None:
            return self._incidents(self._patterns.on_order_event(event))
        ts = event.ts
        self._ratios.add(ts, counted)
        self._messages.add(ts, counted)
        alerts = self._incidents(self._patterns.on_order_event(event))
        alerts.extend(self._ratio_alerts(ts, event.client_order_id))
        return alerts

    def _ratio_alerts(self, ts: int, client_order_id: str) -> list[SurveillanceAlert]:
        config, alerts = self.config, []
        messages = self._messages.count(_NEW, _AMEND, _CANCEL)
        if messages >= config.max_messages:
            alerts.append(self._alert(
                ts, "message_rate", messages, config.max_messages, self._messages.span_ns,
                f"{messages} order messages in {config.stuffing_window_s:g} s",
                [client_order_id],
            ))
        window = self._ratios
        orders = window.count(_NEW, _AMEND)
        if orders >= config.min_orders:
            trades = window.count("trade")
            ratio = orders / max(trades, 1)
            if ratio >= config.max_order_to_trade:
                alerts.append(self._alert(
                    ts, "order_to_trade", ratio, config.max_order_to_trade, window.span_ns,
                    f"{orders} orders to {trades} executions in {config.window_s:g} s",
                    [client_order_id],
                ))
            cancels = window.count(_CANCEL)
            if cancels / orders >= config.max_cancel_ratio:
                alerts.append(self._alert(
                    ts, "cancel_ratio", cancels / orders, config.max_cancel_ratio,
                    window.span_ns, f"{cancels} cancels of {orders} orders in "
                    f"{config.window_s:g} s", [client_order_id],
                ))
        return [alert for alert in alerts if alert is not None]

    def _incidents(self, incidents: list[Incident]) -> list[SurveillanceAlert]:
        alerts = []
        for incident in incidents:
            alerts.append(self._make(incident.ts, incident.kind, incident.value,
                                     incident.threshold, incident.window_ns, incident.detail,
                                     incident.client_order_ids))
        return alerts

    def _alert(self, ts: int, kind: str, value: float, threshold: float, window_ns: int,
               detail: str, client_order_ids: list[str]) -> SurveillanceAlert | None:
        """A ratio alert, unless one of its kind was raised within the cooldown."""
        last = self._last_alert.get(kind)
        if last is not None and ts - last < self.config.cooldown_s * NS_PER_S:
            return None
        self._last_alert[kind] = ts
        return self._make(ts, kind, value, threshold, window_ns, detail, client_order_ids)

    def _make(self, ts: int, kind: str, value: float, threshold: float, window_ns: int,
              detail: str, client_order_ids: list[str]) -> SurveillanceAlert:
        seed = f"{self.account}\x1f{self.venue}\x1f{self.symbol}\x1f{kind}\x1f{ts}\x1f" + (
            "\x1f".join(client_order_ids))
        alert_id = hashlib.blake2b(seed.encode(), digest_size=12).hexdigest()
        return SurveillanceAlert(
            alert_id=alert_id, ts=ts, account=self.account, venue=self.venue,
            symbol=self.symbol, kind=kind, value=float(value), threshold=float(threshold),
            window_ns=window_ns, detail=detail, client_order_ids=list(client_order_ids),
        )


def survey(events: Iterable, account: str, config: SurveillanceConfig) -> list[SurveillanceAlert]:
    """The alerts a whole stream of order events and fills raises (a backtest's output, a
    report's rows): one `InstrumentSurveillance` per instrument, as the flow keys them."""
    states: dict[str, InstrumentSurveillance] = {}
    alerts: list[SurveillanceAlert] = []
    for event in events:
        if not isinstance(event, (OrderEvent, Fill)):
            continue
        key = f"{event.venue}:{event.symbol}"
        state = states.get(key)
        if state is None:
            state = states[key] = InstrumentSurveillance(event.venue, event.symbol, account,
                                                         config)
        alerts.extend(state.on_event(event))
    return alerts
