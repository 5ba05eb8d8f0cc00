from decimal import Decimal as D

from models.events import Quote
from models.order_diff import LiveOrder, Tolerance, match_side


def live(cid, side, price, size):
    return LiveOrder(cid, side, D(price), D(size))


def test_identical_state_needs_no_action():
    bid, ask = live("a", "buy", "10.00", "1"), live("b", "sell", "10.10", "1")
    assert match_side([Quote(D("10.00"), D("1"))], [bid], Tolerance()) == ([], [])
    assert match_side([Quote(D("10.10"), D("1"))], [ask], Tolerance()) == ([], [])


def test_moved_quote_is_cancelled_and_replaced():
    bid, ask = live("a", "buy", "10.00", "1"), live("b", "sell", "10.10", "1")
    assert match_side([Quote(D("10.01"), D("1"))], [bid], Tolerance()) == (
        [Quote(D("10.01"), D("1"))], [bid])
    assert match_side([], [ask], Tolerance()) == ([], [ask])


def test_orders_within_tolerance_stay():
    tolerance = Tolerance(price=D("0.02"), size_fraction=D("0.5"))
    assert match_side(
        [Quote(D("10.01"), D("2"))], [live("a", "buy", "10.00", "1.2")], tolerance
    ) == ([], [])


def test_one_live_order_covers_one_desired_quote_only():
    missing, cancels = match_side(
        [Quote(D("10"), D("1")), Quote(D("10"), D("1"))], [live("a", "buy", "10", "1")],
        Tolerance(),
    )
    assert cancels == []
    assert missing == [Quote(D("10"), D("1"))]
