from decimal import Decimal as D

import pytest

from connectors.venues.market_cache import instrument_for
from models.book_view import TopOfBook
from models.estimators import IntensityEstimator, VolatilityEstimator
from models.events import BBO, Fill
from models.quote_engine import ModelFallbacks, QuoteEngine, QuoteLimits
from models.strategies import build_strategy

BTC = instrument_for("binanceusdm", "BTC/USDT:USDT")


def book(bid, ask, size="1"):
    top = TopOfBook()
    top.apply(
        BBO(
            venue=BTC.venue,
            symbol=BTC.symbol,
            exchange_ts=0,
            receive_ts=0,
            bid_price=D(bid),
            bid_size=D(size),
            ask_price=D(ask),
            ask_size=D(size),
        )
    )
    return top


def engine(strategy="ladder", params=None, max_inventory="0.05", fallbacks=True):
    params = {"order_size": "0.01", **(params or {})}
    return QuoteEngine(
        BTC,
        build_strategy(strategy, params),
        QuoteLimits(max_inventory=D(max_inventory), max_order_size=D("0.01")),
        volatility=VolatilityEstimator(),
        intensity=IntensityEstimator(),
        fallbacks=ModelFallbacks(sigma=5.0, A=1.0, k=0.5) if fallbacks else None,
    )


def fill(side, size):
    return Fill(
        venue=BTC.venue,
        symbol=BTC.symbol,
        ts=0,
        client_order_id="x",
        trade_id="t",
        side=side,
        price=D("61800"),
        size=D(size),
        fee=D(0),
        fee_currency="USDT",
        liquidity="maker",
    )


@pytest.mark.parametrize("strategy", ["ladder", "avellaneda-stoikov-infinite", "glft"])
def test_quotes_are_on_the_grid_and_never_cross_the_touch(strategy):
    intent = engine(strategy).on_book(1, book("61800.10", "61800.20"), 1)
    assert intent is not None and intent.bids and intent.asks
    for quote in intent.bids + intent.asks:
        assert quote.price % BTC.tick_size == 0
        assert quote.size % BTC.step_size == 0
        assert quote.price * quote.size >= BTC.min_notional
    assert max(q.price for q in intent.bids) < D("61800.20")
    assert min(q.price for q in intent.asks) > D("61800.10")


def test_unchanged_desired_state_emits_nothing():
    quoting = engine()
    assert quoting.on_book(1, book("61800.10", "61800.20"), 1) is not None
    assert quoting.on_book(2, book("61800.10", "61800.20"), 2) is None


def test_one_sided_book_pulls_all_quotes():
    quoting = engine()
    quoting.on_book(1, book("61800.10", "61800.20"), 1)
    intent = quoting.on_book(2, TopOfBook(), 2)
    assert intent is not None and intent.bids == [] and intent.asks == []


def test_inventory_limit_stops_the_side_that_would_grow_the_position():
    quoting = engine(max_inventory="0.02")
    quoting.on_fill(fill("buy", "0.02"))
    intent = quoting.on_book(1, book("61800.10", "61800.20"), 1)
    assert intent.bids == []
    assert intent.asks


def test_no_quotes_until_estimators_are_ready_without_fallbacks():
    intent = engine(fallbacks=False).on_book(1, book("61800.10", "61800.20"), 1)
    assert intent is None or (intent.bids == [] and intent.asks == [])


def test_intent_ids_are_deterministic():
    first = engine().on_book(5, book("61800.10", "61800.20"), 5)
    second = engine().on_book(5, book("61800.10", "61800.20"), 5)
    assert first.intent_id == second.intent_id


def test_a_snapshot_from_before_the_requote_memory_restores_and_quotes():
    """A quote flow upgraded on its recovery directory: the Bytewax snapshot was pickled by
    code whose engine had no `_quoted_from` slot yet. It restores, and quotes as the engine
    it was snapshotted from would."""
    import pickle

    old = engine("glft")
    old.on_book(1, book("61800.10", "61800.20"), 1)
    constructor, args, state = old.__reduce_ex__(2)[:3]
    del state[1]["_quoted_from"]  # as the older code pickled it
    restored = constructor(*args)
    restored.__setstate__(state)
    assert pickle.loads(pickle.dumps(restored)).inventory == old.inventory
    assert restored.on_book(2, book("61800.30", "61800.40"), 2) == old.on_book(
        2, book("61800.30", "61800.40"), 2)
