"""Risk limits are checked against their declared ranges before any conversion.

`"max_open_orders": "1e1000000"` once stalled the API for 26 s and the executor for 13 s:
`int()` of that Decimal is quadratic in the exponent. Every limit's type and range is
declared once (`models.risk.limits.LIMIT_RANGES`) and every path parses through it.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from models.risk import LimitsError, parse_limits
from models.risk.limits import LIMIT_RANGES


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_open_orders": "1e1000000"}, "max_open_orders is out of range"),
        ({"max_open_orders": 10**1000}, "max_open_orders is out of range: 1001 digits"),
        ({"max_open_orders": "9" * 400}, "at most 40 characters"),
        ({"max_order_size": "Infinity"}, "max_order_size must be finite"),
        ({"max_order_size": float("inf")}, "max_order_size must be finite"),
        ({"max_order_size": "1e999"}, "max_order_size is out of range"),
        ({"max_order_size": "1e-999"}, "max_order_size is out of range"),
        ({"max_order_size": "1e13"}, "max_order_size must be <= 1,000,000,000,000"),
        ({"max_open_orders": 100_001}, "max_open_orders must be <= 100,000"),
        ({"max_open_orders": "2.5"}, "max_open_orders must be a whole number > 0"),
        ({"price_band_bps": "-1"}, "price_band_bps must be > 0"),
        ({"max_data_age_ms": "86400001"}, "max_data_age_ms must be <= 86,400,000"),
        ({"order_rate_window_ms": "off"}, "cannot be turned off"),
    ],
)
def test_out_of_range_values_are_refused_at_once(changes, message):
    started = time.perf_counter()
    with pytest.raises(LimitsError, match=message):
        parse_limits(changes)
    assert time.perf_counter() - started < 1.0  # a bound on a stall, not a benchmark


def test_every_limit_has_a_range_and_values_inside_it_parse():
    limits = parse_limits({name: str(spec.high) for name, (_, spec) in LIMIT_RANGES.items()})
    assert limits.defaults.max_open_orders == 100_000
    assert limits.max_total_position == Decimal("1e15")
    assert parse_limits({"max_position": "0", "max_order_size": 1e-8}).defaults.max_position == 0
