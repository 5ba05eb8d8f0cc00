"""The surveillance detectors (`models.surveillance`) on constructed order-event sequences:
each abuse pattern raises its alert, and the same sequence without the pattern raises none."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from models.events import Fill, OrderEvent, Position
from models.surveillance import InstrumentSurveillance, SurveillanceConfig

D = Decimal
S = 1_000_000_000
MS = 1_000_000
T0 = 1_723_161_300 * S


class Orders:
    """Feeds one instrument's surveillance and keeps every alert."""

    def __init__(self, **config) -> None:
        self.surveillance = InstrumentSurveillance(
            "binance", "BTC/USDT", "acct-1", SurveillanceConfig(**config))
        self.alerts: list = []

    def _feed(self, event) -> None:
        self.alerts.extend(self.surveillance.on_event(event))

    def event(self, kind, cid, side, price, size, ts, filled="0") -> None:
        self._feed(OrderEvent(venue="binance", symbol="BTC/USDT", ts=ts, kind=kind,
                              client_order_id=cid, side=side, price=D(price), size=D(size),
                              filled=D(filled)))

    def ack(self, cid, side, price, size, ts) -> None:
        self.event("ack", cid, side, price, size, ts)

    def cancel(self, cid, side, price, size, ts) -> None:
        self.event("cancel", cid, side, price, size, ts)

    def fill(self, cid, side, price, size, ts, trade_id) -> None:
        self._feed(Fill(venue="binance", symbol="BTC/USDT", ts=ts, client_order_id=cid,
                        trade_id=trade_id, side=side, price=D(price), size=D(size),
                        fee=D(0), fee_currency="USDT", liquidity="maker"))

    def quotes(self, count: int, start: int, size: str = "0.001") -> int:
        """`count` ordinary two-sided quotes, one a second, each cancelled; the next time."""
        ts = start
        for i in range(count):
            self.ack(f"b{i}", "buy", "60000", size, ts)
            self.ack(f"a{i}", "sell", "60010", size, ts)
            self.cancel(f"b{i}", "buy", "60000", size, ts + 500 * MS)
            self.cancel(f"a{i}", "sell", "60010", size, ts + 500 * MS)
            ts += S
        return ts

    def kinds(self) -> list[str]:
        return [alert.kind for alert in self.alerts]


def test_one_trade_on_both_our_sides_is_a_wash_trade():
    orders = Orders()
    orders.ack("b", "buy", "60000", "0.001", T0)
    orders.ack("s", "sell", "60000", "0.001", T0 + MS)
    orders.fill("b", "buy", "60000", "0.001", T0 + 2 * MS, trade_id="t1")
    orders.fill("s", "sell", "60000", "0.001", T0 + 2 * MS, trade_id="t1")
    [alert] = orders.alerts
    assert (alert.kind, alert.client_order_ids, alert.account) == ("wash_trade", ["b", "s"],
                                                                   "acct-1")
    assert "t1" in alert.detail


def test_a_buy_and_sell_of_the_same_price_and_size_close_together_is_a_wash_trade():
    orders = Orders(wash_window_ms=100)
    orders.fill("b", "buy", "60000", "0.001", T0, trade_id="t1")
    orders.fill("s", "sell", "60000", "0.001", T0 + 40 * MS, trade_id="t2")
    assert orders.kinds() == ["wash_trade"]
    # Further apart, another price or another size: market making, not a wash.
    quiet = Orders(wash_window_ms=100)
    quiet.fill("b", "buy", "60000", "0.001", T0, trade_id="t1")
    quiet.fill("s", "sell", "60000", "0.001", T0 + 150 * MS, trade_id="t2")
    quiet.fill("s2", "sell", "60000.01", "0.001", T0 + 160 * MS, trade_id="t3")
    quiet.fill("s3", "sell", "60000", "0.002", T0 + 170 * MS, trade_id="t4")
    assert quiet.alerts == []


def _spoof(orders: Orders, *, traded: bool, filled: bool = False) -> None:
    ts = orders.quotes(12, T0)
    orders.ack("big", "sell", "60050", "0.01", ts)  # 10x the usual size
    if traded:
        orders.ack("ours", "buy", "60000", "0.001", ts + 100 * MS)
        orders.fill("ours", "buy", "60000", "0.001", ts + 900 * MS, trade_id="t9")
    if filled:
        orders.event("partial_fill", "big", "sell", "60050", "0.01", ts + 1500 * MS, "0.001")
    orders.cancel("big", "sell", "60050", "0.01", ts + 2 * S)


def test_a_large_order_cancelled_unfilled_while_we_trade_the_other_side_is_spoofing():
    orders = Orders()
    _spoof(orders, traded=True)
    [alert] = orders.alerts
    assert (alert.kind, alert.client_order_ids) == ("spoofing", ["big"])
    assert alert.value == pytest.approx(10.0)
    for innocent in (dict(traded=False), dict(traded=True, filled=True)):
        quiet = Orders()
        _spoof(quiet, **innocent)
        assert quiet.alerts == [], innocent


def test_large_orders_at_several_prices_cancelled_as_we_trade_the_other_side_is_layering():
    orders = Orders()
    ts = orders.quotes(12, T0)
    for level in range(3):
        orders.ack(f"layer{level}", "sell", str(60050 + 10 * level), "0.01", ts + level * MS)
    orders.fill("x", "buy", "60000", "0.001", ts + S, trade_id="t9")
    for level in range(3):
        orders.cancel(f"layer{level}", "sell", str(60050 + 10 * level), "0.01",
                      ts + 2 * S + level * MS)
    [alert] = orders.alerts
    assert (alert.kind, alert.client_order_ids) == ("layering",
                                                    ["layer0", "layer1", "layer2"])


def test_quote_stuffing_is_a_message_rate_alert_once_per_cooldown():
    orders = Orders(max_messages=50, cooldown_s=60)
    for i in range(60):  # 60 new orders in 0.6 s
        orders.ack(f"o{i}", "buy", "60000", "0.001", T0 + i * 10 * MS)
    assert orders.kinds() == ["message_rate"]
    assert orders.alerts[0].value == 50


def test_order_to_trade_and_cancel_ratios_are_judged_over_enough_orders():
    orders = Orders(min_orders=20, max_order_to_trade=15, max_cancel_ratio=0.95)
    orders.fill("b0", "buy", "60000", "0.001", T0, trade_id="t0")
    orders.quotes(9, T0)  # 18 orders: too few to judge
    assert orders.alerts == []
    orders.quotes(2, T0 + 9 * S)
    assert sorted(orders.kinds()) == ["cancel_ratio", "order_to_trade"]
    ratio = next(a for a in orders.alerts if a.kind == "order_to_trade")
    assert (ratio.value, ratio.threshold) == (20.0, 15.0)


def test_the_same_input_raises_the_same_alert_ids_and_positions_are_ignored():
    first, second = Orders(), Orders()
    for orders in (first, second):
        _spoof(orders, traded=True)
        orders.surveillance.on_event(Position(
            venue="binance", symbol="BTC/USDT", ts=T0, quantity=D(0), average_price=None,
            realized_pnl=D(0), unrealized_pnl=D(0), fees=D(0)))
    assert [a.alert_id for a in first.alerts] == [a.alert_id for a in second.alerts]


def test_the_configuration_refuses_unknown_keys_and_bad_thresholds():
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"max_cancel": 0.5}, SurveillanceConfig)
    with pytest.raises(ValueError, match="max_cancel_ratio"):
        SurveillanceConfig(max_cancel_ratio=1.5)
    with pytest.raises(ValueError, match="min_orders"):
        SurveillanceConfig(min_orders=0)
