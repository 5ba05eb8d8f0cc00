from decimal import Decimal as D

from models.events import Quote
from models.order_diff import LiveOrder, Tolerance, diff_orders


def live(cid, side, price, size):
    return LiveOrder(cid, side, D(price), D(size))


def test_identical_state_needs_no_action():
    actions = diff_orders(
        [Quote(D("10.00"), D("1"))],
        [Quote(D("10.10"), D("1"))],
        [live("a", "buy", "10.00", "1"), live("b", "sell", "10.10", "1")],
    )
    assert not actions


def test_moved_quote_is_cancelled_and_replaced():
    actions = diff_orders(
        [Quote(D("10.01"), D("1"))],
        [],
        [live("a", "buy", "10.00", "1"), live("b", "sell", "10.10", "1")],
    )
    assert sorted(actions.cancels) == ["a", "b"]
    assert actions.places == [("buy", Quote(D("10.01"), D("1")))]


def test_orders_within_tolerance_stay():
    tolerance = Tolerance(price=D("0.02"), size_fraction=D("0.5"))
    actions = diff_orders(
        [Quote(D("10.01"), D("2"))], [], [live("a", "buy", "10.00", "1.2")], tolerance
    )
    assert not actions


def test_one_live_order_covers_one_desired_quote_only():
    actions = diff_orders(
        [Quote(D("10"), D("1")), Quote(D("10"), D("1"))], [], [live("a", "buy", "10", "1")]
    )
    assert actions.cancels == []
    assert actions.places == [("buy", Quote(D("10"), D("1")))]
