"""The surveillance detectors (`models.surveillance`) on constructed order-event sequences:
each abuse pattern raises its alert, and the same sequence without the pattern raises none."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from models.events import Position
from models.surveillance import SurveillanceConfig
from tests.surveillance_cases import MS, T0, Orders, S, layering, spoof, wash

D = Decimal


def test_one_trade_on_both_our_sides_is_a_wash_trade():
    orders = Orders()
    wash(orders)
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


def test_a_large_order_cancelled_unfilled_while_we_trade_the_other_side_is_spoofing():
    orders = Orders()
    spoof(orders, traded=True)
    [alert] = orders.alerts
    assert (alert.kind, alert.client_order_ids) == ("spoofing", ["big"])
    assert alert.value == pytest.approx(10.0)
    for innocent in (dict(traded=False), dict(traded=True, filled=True)):
        quiet = Orders()
        spoof(quiet, **innocent)
        assert quiet.alerts == [], innocent


def test_large_orders_at_several_prices_cancelled_as_we_trade_the_other_side_is_layering():
    orders = Orders()
    layering(orders)
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
        spoof(orders, traded=True)
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
