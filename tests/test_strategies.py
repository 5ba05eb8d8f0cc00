"""Quoting models: formulas against hand-computed values, validation, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.strategies import STRATEGIES, MarketState, Param, build_strategy, strategy_params
from models.strategies.avellaneda_stoikov import AvellanedaStoikov
from models.strategies.avellaneda_stoikov_infinite import AvellanedaStoikovInfinite
from models.strategies.glft import GLFT, glft_coefficients
from models.strategies.ladder import Ladder

LN_16_15 = 0.06453852113757116  # ln(1 + γ/k) for γ = 0.1, k = 1.5


def state(inventory: float = 0.0, **changes: float | None) -> MarketState:
    """The paper's market: s = 100, σ = 2, A = 140, k = 1.5."""
    values = dict(
        mid=100.0, best_bid=99.99, best_ask=100.01, inventory=inventory,
        sigma=2.0, A=140.0, k=1.5, time_left=None,
    )
    values.update(changes)
    return MarketState(**values)


# --- Avellaneda–Stoikov, finite horizon ---------------------------------------------------

def test_avellaneda_stoikov_matches_the_paper_formulas():
    # γσ²(T−t) = 0.1·4·0.5 = 0.2, so r = 100 − 2·0.2 = 99.6 and the spread is
    # 0.2 + 20·ln(16/15) = 1.490770...; quotes at r ± 0.745385...
    quotes = AvellanedaStoikov(gamma=0.1).quote(state(inventory=2.0, time_left=0.5))
    assert quotes.reservation_price == pytest.approx(99.6)
    assert quotes.bids[0].price == pytest.approx(99.6 - (0.2 + 20 * LN_16_15) / 2)
    assert quotes.asks[0].price == pytest.approx(99.6 + (0.2 + 20 * LN_16_15) / 2)
    assert quotes.bids[0].size == quotes.asks[0].size == 1.0


def test_inventory_is_counted_in_lots():
    lots = AvellanedaStoikov(order_size=1.0).quote(state(inventory=2.0, time_left=0.5))
    same_lots = AvellanedaStoikov(order_size=0.25).quote(state(inventory=0.5, time_left=0.5))
    assert same_lots.reservation_price == pytest.approx(lots.reservation_price)
    assert same_lots.bids[0].size == 0.25


def test_rolling_horizon_is_used_without_time_left_and_expired_time_counts_as_zero():
    rolling = AvellanedaStoikov(horizon=0.5).quote(state(inventory=2.0))
    assert rolling.reservation_price == pytest.approx(99.6)
    expired = AvellanedaStoikov().quote(state(inventory=2.0, time_left=-3.0))
    assert expired.reservation_price == 100.0
    assert expired.asks[0].price - expired.bids[0].price == pytest.approx(20 * LN_16_15)


# --- Avellaneda–Stoikov, infinite horizon (section 2.3) -----------------------------------

def value(x: float, s: float, q: float, gamma: float, sigma: float, omega: float) -> float:
    """The paper's infinite-horizon value function, up to a positive constant factor."""
    return -math.exp(-gamma * (x + q * s)) / (2 * omega - gamma**2 * sigma**2 * q**2)


@pytest.mark.parametrize("q", [-3.0, -1.0, 0.0, 0.5, 2.0, 4.0])
def test_infinite_horizon_quotes_are_the_indifference_prices_plus_the_edge(q):
    gamma, sigma, omega = 0.1, 2.0, 2.5
    edge = 10 * LN_16_15
    quotes = AvellanedaStoikovInfinite(gamma=gamma, omega=omega).quote(state(inventory=q))
    r_bid = quotes.bids[0].price + edge
    r_ask = quotes.asks[0].price - edge
    here = value(0.0, 100.0, q, gamma, sigma, omega)
    # Buying one unit at r_bid, or selling one at r_ask, leaves the investor indifferent.
    assert value(-r_bid, 100.0, q + 1, gamma, sigma, omega) == pytest.approx(here, rel=1e-9)
    assert value(r_ask, 100.0, q - 1, gamma, sigma, omega) == pytest.approx(here, rel=1e-9)


def test_infinite_horizon_at_zero_inventory_by_hand():
    # γ²σ² = 0.04, 2ω = 5: r_b = 100 + 10·ln(1 − 0.008), r_a = 100 − 10·ln(1 − 0.008).
    quotes = AvellanedaStoikovInfinite(gamma=0.1, omega=2.5).quote(state())
    assert quotes.bids[0].price == pytest.approx(100 + 10 * math.log(0.992) - 10 * LN_16_15)
    assert quotes.asks[0].price == pytest.approx(100 - 10 * math.log(0.992) + 10 * LN_16_15)
    assert quotes.reservation_price == 100.0


def test_infinite_horizon_stops_adding_inventory_at_its_bound():
    # Q = √(2ω)/(γσ) = √5/0.2 ≈ 11.18, so buying stops at q ≥ 10.18.
    model = AvellanedaStoikovInfinite(gamma=0.1, omega=2.5)
    inside = model.quote(state(inventory=10.0))
    assert inside.bids and inside.asks
    long_past = model.quote(state(inventory=10.5))
    assert long_past.bids == () and long_past.asks
    short_past = model.quote(state(inventory=-40.0))
    assert short_past.asks == () and math.isfinite(short_past.bids[0].price)
    assert model.quote(state(inventory=40.0)).asks == long_past.asks  # priced at the bound


def test_infinite_horizon_bound_tightens_with_volatility():
    model = AvellanedaStoikovInfinite(gamma=0.1, omega=2.5)
    assert model.quote(state(inventory=5.0, sigma=2.0)).bids
    assert not model.quote(state(inventory=5.0, sigma=4.0)).bids  # bound ≈ 4.6 lots
    frozen = model.quote(state(sigma=30.0))  # bound < 0: even one lot is too risky
    assert frozen.bids == () and frozen.asks == ()


# --- GLFT ---------------------------------------------------------------------------------

def test_glft_coefficients_by_hand():
    # c1 = (1/γ)·ln(1 + γ/k); c2 = √(γ/(2Ak) · (1 + γ/k)^(k/γ + 1)) = √(0.1/420 · (16/15)^16)
    c1, c2 = glft_coefficients(0.1, 140.0, 1.5)
    assert c1 == pytest.approx(10 * LN_16_15)
    assert c2 == pytest.approx(math.sqrt(0.1 / 420 * 2.8084039655764466))


def test_glft_quotes_by_hand():
    c1, c2 = 10 * LN_16_15, 0.025858608060982998
    half_spread, skew = c1 + 0.5 * 2.0 * c2, 2.0 * c2
    quotes = GLFT(gamma=0.1).quote(state(inventory=3.0))
    assert quotes.bids[0].price == pytest.approx(100 - half_spread - 3 * skew)
    assert quotes.asks[0].price == pytest.approx(100 + half_spread - 3 * skew)
    assert quotes.reservation_price == pytest.approx(100 - 3 * skew)


# --- Ladder -------------------------------------------------------------------------------

def test_ladder_levels_sizes_and_skew_by_hand():
    ladder = Ladder(order_size=2.0, levels=3, spread_bps=10, level_spacing_bps=5,
                    size_growth=1.5, skew_bps_per_lot=1)
    # q = 4/2 = 2 lots: r = 100·(1 − 2 bps) = 99.98; levels at 5, 10, 15 bps of 100.
    quotes = ladder.quote(state(inventory=4.0))
    assert quotes.reservation_price == pytest.approx(99.98)
    assert [b.price for b in quotes.bids] == pytest.approx([99.93, 99.88, 99.83])
    assert [a.price for a in quotes.asks] == pytest.approx([100.03, 100.08, 100.13])
    assert [b.size for b in quotes.bids] == pytest.approx([2.0, 3.0, 4.5])


def test_prediction_skew_shifts_every_model():
    for name in STRATEGIES:
        model = build_strategy(name, {})
        plain, shifted = model.quote(state()), model.quote(state(skew=0.3))
        assert shifted.reservation_price == pytest.approx(plain.reservation_price + 0.3)
        assert shifted.bids[0].price == pytest.approx(plain.bids[0].price + 0.3)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_model_turns_one_sided_at_max_lots(name):
    model = build_strategy(name, {"max_lots": 3, "order_size": 0.5})
    long = model.quote(state(inventory=1.5))
    assert long.bids == () and long.asks
    short = model.quote(state(inventory=-1.5))
    assert short.asks == () and short.bids
    assert model.quote(state(inventory=1.4)).bids


# --- Registry -----------------------------------------------------------------------------

def test_registry_names_and_declared_parameters():
    expected = {"ladder", "avellaneda-stoikov", "avellaneda-stoikov-infinite", "glft",
                "bandit", "fixed-offset"}
    assert set(STRATEGIES) == expected
    for name, cls in STRATEGIES.items():
        assert cls.name == name
        params = strategy_params(name)
        assert "order_size" in params
        for param in params.values():
            assert isinstance(param, Param)
            kind, default, help_text, bounds = param
            assert kind in (int, float) and isinstance(default, kind) and help_text
            assert bounds.problem(name, default) is None
        assert build_strategy(name, {}) == cls()


def test_string_values_are_parsed_to_the_declared_types():
    ladder = build_strategy("ladder", {"levels": "3", "spread_bps": "7.5", "max_lots": "inf"})
    assert ladder.levels == 3 and isinstance(ladder.levels, int)
    assert ladder.spread_bps == 7.5 and ladder.max_lots == math.inf
    assert build_strategy("glft", {"gamma": 0.5}).gamma == 0.5
    assert build_strategy("ladder", {"levels": 2.0}).levels == 2


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("avellaneda", {}, "unknown strategy 'avellaneda'; known: avellaneda-stoikov, "
                           "avellaneda-stoikov-infinite, bandit, fixed-offset, glft, ladder"),
        ("glft", {"gama": "1"}, "unknown parameter(s) gama; valid: order_size, gamma, max_lots"),
        ("glft", {"gamma": "0"}, "glft: gamma must be > 0, got 0.0"),
        ("glft", {"gamma": "nan"}, "glft: gamma must be > 0, got nan"),
        ("avellaneda-stoikov", {"gamma": "-0.1"}, "gamma must be > 0"),
        ("avellaneda-stoikov", {"horizon": "-1"}, "horizon must be >= 0"),
        ("avellaneda-stoikov-infinite", {"omega": "0"}, "omega must be > 0"),
        ("glft", {"gamma": "high"}, "glft: gamma must be float, got 'high'"),
        ("ladder", {"levels": "2.5"}, "ladder: levels must be int, got '2.5'"),
        ("ladder", {"levels": 2.5}, "ladder: levels must be int, got 2.5"),
        ("ladder", {"levels": "0"}, "levels must be > 0"),
        ("ladder", {"spread_bps": "0"}, "spread_bps must be > 0"),
        ("ladder", {"skew_bps_per_lot": "-1"}, "skew_bps_per_lot must be >= 0"),
        ("ladder", {"order_size": "-2"}, "order_size must be > 0"),
        ("ladder", {"max_lots": "0"}, "max_lots must be > 0"),
        ("ladder", {"levels": 30_000_000}, "ladder: levels must be <= 50, got 30000000"),
        ("ladder", {"levels": "1e1000000"}, "ladder: levels must be int"),
        ("ladder", {"levels": int("9" * 400)}, "levels is out of range: 400 digits"),
        ("glft", {"gamma": math.inf}, "glft: gamma must be <= 1e+06, got inf"),
        ("glft", {"gamma": "Infinity"}, "gamma must be <= 1e+06, got inf"),
        ("glft", {"gamma": int("9" * 400)}, "gamma is out of range: 400 digits"),
        ("glft", {"gamma": "9" * 400}, "gamma is 400 characters long"),
        ("glft", {"order_size": "1e999"}, "order_size must be <= 1e+09, got inf"),
        ("glft", {"gamma": True}, "gamma must be float, got 'True'"),
        ("avellaneda-stoikov", {"horizon": "1e12"}, "horizon must be <= 1e+07"),
    ],
)
def test_bad_names_and_values_are_clear_errors(name, params, message):
    with pytest.raises(ValueError) as error:
        build_strategy(name, params)
    assert message in str(error.value)


def test_strategy_params_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="known: avellaneda-stoikov"):
        strategy_params("nope")


# --- Properties ---------------------------------------------------------------------------

models = st.sampled_from(
    [
        AvellanedaStoikov(gamma=0.1),
        AvellanedaStoikov(gamma=2.0, order_size=0.01, max_lots=20),
        AvellanedaStoikovInfinite(gamma=0.1, omega=2.5),
        AvellanedaStoikovInfinite(gamma=1.0, omega=50.0, order_size=0.5, max_lots=8),
        GLFT(gamma=0.1),
        GLFT(gamma=5.0, order_size=0.001, max_lots=10),
        Ladder(levels=4, spread_bps=2, size_growth=2, skew_bps_per_lot=0.5, max_lots=10),
        Ladder(order_size=0.1, skew_bps_per_lot=3),
    ]
)
market = st.builds(
    lambda mid, sigma, A, k, time_left, skew: MarketState(
        mid=mid, best_bid=None, best_ask=None, inventory=0.0,
        sigma=sigma, A=A, k=k, time_left=time_left, skew=skew,
    ),
    mid=st.floats(1.0, 1e5),
    sigma=st.floats(0.0, 10.0),
    A=st.floats(0.1, 1000.0),
    k=st.floats(0.01, 100.0),
    time_left=st.none() | st.floats(0.0, 100.0),
    skew=st.floats(-1.0, 1.0),
)
lots = st.floats(-50.0, 50.0)


def with_lots(model, market_state: MarketState, q: float) -> MarketState:
    return MarketState(**{
        **{f: getattr(market_state, f) for f in MarketState.__slots__},
        "inventory": q * model.order_size,
    })


@settings(max_examples=300, deadline=None)
@given(model=models, market_state=market, q=lots)
def test_bids_below_asks_sorted_and_sizes_positive(model, market_state, q):
    quotes = model.quote(with_lots(model, market_state, q))
    prices = [level.price for level in quotes.bids + quotes.asks]
    assert all(math.isfinite(p) for p in prices)
    if quotes.bids and quotes.asks:
        assert quotes.bids[0].price < quotes.asks[0].price
    assert [b.price for b in quotes.bids] == sorted((b.price for b in quotes.bids), reverse=True)
    assert [a.price for a in quotes.asks] == sorted(a.price for a in quotes.asks)
    assert all(level.size > 0 for level in quotes.bids + quotes.asks)


@settings(max_examples=300, deadline=None)
@given(model=models, market_state=market, q=lots, more=st.floats(0.01, 20.0))
def test_reservation_price_moves_against_inventory(model, market_state, q, more):
    lower = model.quote(with_lots(model, market_state, q)).reservation_price
    higher = model.quote(with_lots(model, market_state, q + more)).reservation_price
    assert higher <= lower + 1e-9 * abs(lower)
