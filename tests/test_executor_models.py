"""The executor's pure pieces: client order ids, the order state machine, planning,
reconciliation comparisons, de-duplication; and its retry policy and rate limiter."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.execution.rate_limiter import AsyncRateLimiter
from connectors.execution.retry import RetryPolicy, with_retries
from connectors.venues.market_cache import instrument_for
from models.accounting import PositionLedger
from models.events import Fill, OrderEvent, OrderIntent, Quote
from models.execution.client_ids import client_order_id
from models.execution.dedupe import RecentKeys
from models.execution.orders import (
    CANCELED,
    FILLED,
    OPEN,
    PENDING,
    REJECTED,
    OrderTracker,
    TrackedOrder,
    VenueOrder,
)
from models.execution.plan import RequestCosts, plan
from models.execution.reconcile import compare_balances, compare_open_orders, expected_balances
from models.order_diff import Tolerance
from models.rate_limit import TokenBucket

D = Decimal
BINANCE_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
OKX_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


# -- client order ids --------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=80), st.sampled_from(["buy", "sell"]), st.integers(0, 99))
def test_client_ids_are_deterministic_and_fit_the_venues(intent_id, side, level):
    cid = client_order_id(intent_id, side, level)
    assert cid == client_order_id(intent_id, side, level)
    assert BINANCE_ID.match(cid) and OKX_ID.match(cid)


def test_client_ids_differ_by_intent_side_and_level():
    ids = {client_order_id(f"i{n}", side, level)
           for n in range(50) for side in ("buy", "sell") for level in range(5)}
    assert len(ids) == 500
    # The separator keeps ("a|b", 1) and ("a", "b|1")-like inputs apart.
    assert client_order_id("a1", "buy", 1) != client_order_id("a", "buy", 11)


@pytest.mark.parametrize("prefix", ["", "q-f", "qé", "q f"])
def test_client_id_prefix_must_be_plain_alphanumeric(prefix):
    with pytest.raises(ValueError, match="prefix"):
        client_order_id("i", "buy", 0, prefix)


# -- order state machine -----------------------------------------------------------------------


def _order(cid="o1", side="buy", price="100", amount="3") -> TrackedOrder:
    return TrackedOrder(client_order_id=cid, venue="sim", symbol="SIM/USD", side=side,
                        price=D(price), amount=D(amount), sent_ts=0)


def _event(kind, filled="0", cid="o1", reason=None, price="100", size="3") -> OrderEvent:
    return OrderEvent(venue="sim", symbol="SIM/USD", ts=1, kind=kind, client_order_id=cid,
                      exchange_order_id="9", side="buy", price=D(price), size=D(size),
                      filled=D(filled), remaining=D(size) - D(filled), reason=reason)


def test_events_advance_an_order_once_and_in_order():
    tracker = OrderTracker()
    tracker.add(_order())
    assert tracker.apply(_event("ack"))
    assert not tracker.apply(_event("ack"))  # duplicate
    assert tracker.apply(_event("partial_fill", "1"))
    assert not tracker.apply(_event("partial_fill", "1"))
    assert tracker.apply(_event("partial_fill", "2"))
    assert not tracker.apply(_event("partial_fill", "1"))  # late, older
    assert tracker.apply(_event("fill", "3"))
    assert tracker.finished_status("o1") == FILLED
    assert not tracker.apply(_event("cancel", "3"))  # terminal absorbs
    assert tracker.get("o1") is None and len(tracker) == 0


def test_a_refused_cancel_leaves_a_pending_order_pending_and_takes_the_venues_values():
    tracker = OrderTracker()
    order = _order()
    tracker.add(order)
    order.cancel_requested = True
    assert not tracker.apply(_event("reject", reason="CANCEL_REJECTED: order is closed",
                                    price="101"))
    assert order.status == PENDING and not order.cancel_requested and order.price == D("101")
    assert tracker.apply(_event("reject", reason="POST_ONLY_WOULD_CROSS"))
    assert tracker.finished_status("o1") == REJECTED


def test_amend_events_confirm_our_amend_or_report_the_venues():
    tracker = OrderTracker()
    order = _order()
    tracker.add(order)
    order.amend_from = (order.price, order.amount)
    order.price = D("99")
    assert tracker.apply(_event("amend", price="99"))  # confirms: news, though we knew
    assert order.amend_from is None
    assert not tracker.apply(_event("amend", price="99"))  # a repeat
    assert tracker.apply(_event("amend", price="98"))


_SEQUENCE = [("ack", "0"), ("partial_fill", "1"), ("partial_fill", "2"), ("fill", "3")]


@given(st.permutations(range(4)), st.lists(st.integers(0, 3), max_size=4))
def test_any_order_and_repetition_of_events_ends_filled_without_going_back(order, repeats):
    tracker = OrderTracker()
    tracker.add(_order())
    events = [_SEQUENCE[i] for i in order] + [_SEQUENCE[i] for i in repeats]
    news = [(kind, D(filled)) for kind, filled in events if tracker.apply(_event(kind, filled))]
    assert tracker.finished_status("o1") == FILLED
    assert news[-1] == ("fill", D(3)) and [k for k, _ in news].count("fill") == 1
    fills = [filled for _, filled in news]
    assert fills == sorted(fills) and len(set(fills)) == len(fills)  # never back, never twice
    assert ("ack", D(0)) not in news[1:]


def test_venue_orders_report_the_most_advanced_step():
    tracker = OrderTracker()
    tracker.add(_order())
    seen = VenueOrder(client_order_id="o1", exchange_order_id="9", symbol="SIM/USD",
                      side="buy", price=D("100"), amount=D("3"), filled=D("1"), status=OPEN,
                      ts=0)
    assert tracker.apply_venue_order(seen) == "partial_fill"
    assert tracker.apply_venue_order(seen) is None
    done = VenueOrder(**{**{f: getattr(seen, f) for f in seen.__struct_fields__},
                         "status": CANCELED})
    assert tracker.apply_venue_order(done) == "cancel"
    assert tracker.apply_venue_order(done) is None


def test_tracking_an_order_twice_is_an_error():
    tracker = OrderTracker()
    tracker.add(_order())
    with pytest.raises(ValueError, match="tracked already"):
        tracker.add(_order())


def test_recent_keys_forget_the_oldest():
    keys = RecentKeys(2)
    assert keys.add("a") and keys.add("b") and not keys.add("a")
    assert keys.add("c") and "a" not in keys and len(keys) == 2
    with pytest.raises(ValueError):
        RecentKeys(0)


# -- planning ----------------------------------------------------------------------------------


def _intent(bids, asks) -> OrderIntent:
    return OrderIntent(intent_id="i", venue="sim", symbol="SIM/USD", ts=0, strategy="t",
                       bids=[Quote(D(p), D(s)) for p, s in bids],
                       asks=[Quote(D(p), D(s)) for p, s in asks])


def test_orders_within_tolerance_stay_and_the_rest_is_replaced():
    keep, move = _order("keep", "buy", "100", "3"), _order("move", "sell", "105", "3")
    result = plan(_intent([("100.01", "3")], [("104", "3")]), [keep, move],
                  Tolerance(price=D("0.02")), amend=False)
    assert result.cancels == [move]
    assert [(p.side, p.level, p.quote.price) for p in result.places] == [("sell", 0, D("104"))]
    assert not result.amends


def test_a_cancel_and_a_place_on_one_side_become_an_amend_when_allowed():
    move = _order("move", "sell", "105", "3")
    result = plan(_intent([], [("104", "3"), ("106", "3")]), [move], Tolerance(), amend=True)
    assert [(a.order, a.quote.price) for a in result.amends] == [(move, D("104"))]
    assert [(p.level, p.quote.price) for p in result.places] == [(1, D("106"))]
    assert RequestCosts().amend_is_cheaper and not RequestCosts(amend=2).amend_is_cheaper


def test_equal_quotes_on_two_levels_get_two_levels():
    result = plan(_intent([("100", "1"), ("100", "1")], []), [], Tolerance(), amend=False)
    assert [p.level for p in result.places] == [0, 1]


# -- reconciliation comparisons ----------------------------------------------------------------


def test_open_orders_compare_both_ways_and_wait_for_young_pending_orders():
    tracked = [_order("both"), _order("gone"), _order("young")]
    tracked[1].status = OPEN
    tracked[2].sent_ts = 100
    venue = [
        VenueOrder(client_order_id="both", exchange_order_id="1", symbol="SIM/USD", side="buy",
                   price=D("100"), amount=D("3"), filled=D("1"), status=OPEN, ts=0),
        VenueOrder(client_order_id="stranger", exchange_order_id="2", symbol="SIM/USD",
                   side="sell", price=D("101"), amount=D("1"), filled=D(0), status=OPEN, ts=0),
    ]
    diff = compare_open_orders(tracked, venue, sent_before_ns=50)
    assert [o.client_order_id for o in diff.unknown] == ["stranger"]
    assert [o.client_order_id for o in diff.missing] == ["gone"]
    assert [(o.client_order_id, s.filled) for o, s in diff.changed] == [("both", D("1"))]


def test_expected_balances_follow_fills_and_fees_exactly():
    instrument = instrument_for("binance", "BTC/USDT")
    ledger = PositionLedger(instrument)
    for side, price, size, fee in (("buy", "60000.01", "0.003", "0.18"),
                                   ("sell", "60010.5", "0.001", "0.06")):
        ledger.apply(Fill(venue="binance", symbol="BTC/USDT", ts=0, client_order_id="c",
                          trade_id=f"{side}", side=side, price=D(price), size=D(size),
                          fee=D(fee), fee_currency="USDT", liquidity="maker"))
    start = {"USDT": D("1000"), "BTC": D("0")}
    expected = expected_balances(start, [ledger])
    cash = D("1000") - D("60000.01") * D("0.003") + D("60010.5") * D("0.001") - D("0.24")
    assert expected == {"BTC": D("0.002"), "USDT": cash}
    assert compare_balances(expected, {"BTC": D("0.002"), "USDT": cash}) == {}
    assert compare_balances(expected, {"BTC": D("0.002")}) == {"USDT": (cash, D(0))}


# -- retries and rate limits -------------------------------------------------------------------


async def _no_sleep(seconds: float) -> None:
    _no_sleep.slept.append(seconds)


def _calls(*outcomes):
    """A request failing or answering as listed; counts its calls."""
    calls = []

    async def request():
        outcome = outcomes[len(calls)]
        calls.append(outcome)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return request, calls


def test_network_errors_are_retried_with_exponential_backoff():
    _no_sleep.slept = []
    request, calls = _calls(ccxt.RequestTimeout("t"), ccxt.ExchangeNotAvailable("5xx"), "ok")
    policy = RetryPolicy(attempts=3, base_delay_s=0.1, factor=2)
    assert asyncio.run(with_retries(request, policy, sleep=_no_sleep)) == "ok"
    assert _no_sleep.slept == [0.1, 0.2] and len(calls) == 3


@pytest.mark.parametrize("answer", [ccxt.InvalidOrder("no"), ccxt.InsufficientFunds("poor"),
                                    ccxt.AuthenticationError("who")])
def test_the_venues_answers_are_never_retried(answer):
    _no_sleep.slept = []
    request, calls = _calls(answer, "never")
    with pytest.raises(type(answer)):
        asyncio.run(with_retries(request, RetryPolicy(), sleep=_no_sleep))
    assert len(calls) == 1


def test_a_429_waits_its_retry_after_and_holds_the_venue():
    _no_sleep.slept = []
    limited = ccxt.RateLimitExceeded("429")
    limited.retry_after_s = 1.5
    request, _ = _calls(limited, "ok")
    held = []
    asyncio.run(with_retries(request, RetryPolicy(), sleep=_no_sleep, on_rate_limited=held.append))
    assert _no_sleep.slept == [1.5] and held == [1.5]


def test_a_request_found_at_the_venue_is_not_sent_again():
    _no_sleep.slept = []
    request, calls = _calls(ccxt.RequestTimeout("lost answer"), "second send")

    async def look():
        return "found"

    assert asyncio.run(with_retries(request, RetryPolicy(), sleep=_no_sleep,
                                    before_retry=look)) == "found"
    assert len(calls) == 1


def test_a_hung_request_times_out_and_the_last_error_is_raised():
    async def hang():
        await asyncio.sleep(10)

    with pytest.raises(ccxt.RequestTimeout):
        asyncio.run(with_retries(hang, RetryPolicy(attempts=2, base_delay_s=0, timeout_s=0.01)))


@pytest.mark.parametrize("bad", [{"attempts": 0}, {"factor": 0.5}, {"base_delay_s": -1}])
def test_bad_retry_policies_are_refused(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


@given(st.lists(st.sampled_from([1.0, 1.0, 2.0, 5.0]), min_size=1, max_size=60))
def test_the_limiter_never_grants_more_than_rate_times_time_plus_capacity(costs):
    now = [0]
    granted: list[tuple[int, float]] = []

    async def advance(seconds: float) -> None:
        now[0] += max(1, round(seconds * 1e9))

    limiter = AsyncRateLimiter(TokenBucket(100.0, 5.0, 0), clock=lambda: now[0], sleep=advance,
                               on_grant=lambda t, c: granted.append((t, c)))

    async def run():
        for cost in costs:
            await limiter.acquire(cost)

    asyncio.run(run())
    for i, (start, _) in enumerate(granted):
        for j in range(i, len(granted)):
            elapsed_s = (granted[j][0] - start) / 1e9
            cost = sum(c for _, c in granted[i:j + 1])
            assert cost <= 5.0 + 100.0 * elapsed_s + 1e-9


def test_a_hold_delays_every_request_of_the_venue():
    now = [0]

    async def advance(seconds: float) -> None:
        now[0] += round(seconds * 1e9)

    limiter = AsyncRateLimiter(TokenBucket(1000.0, 10.0, 0), clock=lambda: now[0], sleep=advance)
    limiter.hold(0.25)
    asyncio.run(limiter.acquire())
    assert now[0] >= 250_000_000
    with pytest.raises(ValueError):
        limiter.hold(-1)
