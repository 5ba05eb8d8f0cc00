"""PositionLedger: average cost through flips, exact cash-flow identity, bad fills refused."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.venues.market_cache import all_instruments
from models.accounting import PositionLedger
from models.events import Fill

D = Decimal
PERP = all_instruments()["binanceusdm:BTC/USDT:USDT"]
_ids = iter(range(10**9))


def fill(side: str, price: str | Decimal, size: str | Decimal, fee: str | Decimal = "0") -> Fill:
    return Fill(
        venue=PERP.venue, symbol=PERP.symbol, ts=1, client_order_id="c", trade_id=str(next(_ids)),
        side=side, price=D(price), size=D(size), fee=D(fee), fee_currency="USDT",
        liquidity="maker",
    )


def test_average_cost_on_adds_and_realized_on_reductions():
    ledger = PositionLedger(PERP)
    ledger.apply(fill("buy", "100.0", "1.000", "0.02"))
    ledger.apply(fill("buy", "110.0", "1.000", "0.02"))
    assert ledger.quantity == 2 and ledger.average_price == D("105")
    ledger.apply(fill("sell", "120.0", "0.500", "-0.01"))  # a maker rebate
    assert ledger.realized_pnl == D("7.5")
    assert ledger.average_price == D("105") and ledger.quantity == D("1.5")
    assert ledger.fees == D("0.03")
    assert ledger.volume == D("100") + D("110") + D("60")
    assert ledger.unrealized(D("100.0")) == D("-7.5")


def test_a_flip_through_zero_realizes_the_old_side_and_opens_the_new_at_the_fill_price():
    ledger = PositionLedger(PERP)
    ledger.apply(fill("buy", "100.0", "1.000"))
    ledger.apply(fill("sell", "90.0", "3.000"))
    assert ledger.realized_pnl == D("-10")
    assert ledger.quantity == D("-2") and ledger.average_price == D("90")
    ledger.apply(fill("buy", "80.0", "2.000"))
    assert ledger.realized_pnl == D("10") and ledger.quantity == 0
    assert ledger.average_price is None and ledger.open_cost == 0


def test_position_event_carries_the_ledger_state():
    ledger = PositionLedger(PERP)
    ledger.apply(fill("sell", "100.0", "0.010", "0.0002"))
    position = ledger.position(42, D("99.0"))
    assert (position.ts, position.quantity, position.unrealized_pnl) == (42, D("-0.01"), D("0.01"))
    assert (position.symbol, position.mark_price) == (PERP.symbol, D(99))
    assert ledger.position(43, None).unrealized_pnl == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"symbol": "ETH/USDT:USDT"},
        {"venue": "binance"},
        {"fee_currency": "BNB"},
        {"size": D(0)},
        {"price": D("-1")},
    ],
)
def test_fills_of_another_instrument_or_malformed_are_refused(bad):
    ledger = PositionLedger(PERP)
    with pytest.raises(ValueError):
        ledger.apply(msgspec.structs.replace(fill("buy", "100.0", "1.000"), **bad))
    assert ledger.quantity == 0 and ledger.volume == 0


prices = st.integers(min_value=1, max_value=10**7).map(lambda n: n * PERP.tick_size)
sizes = st.integers(min_value=1, max_value=5_000).map(lambda n: n * PERP.step_size)
fees = st.integers(min_value=-10**6, max_value=10**6).map(lambda n: D(n).scaleb(-8))
fills_st = st.lists(st.tuples(st.sampled_from(("buy", "sell")), prices, sizes, fees), max_size=60)


@given(fills=fills_st, mark=prices)
def test_pnl_equals_cash_flow_exactly(fills, mark):
    ledger = PositionLedger(PERP)
    cash = D(0)
    for side, price, size, fee in fills:
        ledger.apply(fill(side, price, size, fee))
        cash += -price * size if side == "buy" else price * size
    total_fees = sum((f[3] for f in fills), D(0))
    quantity = sum((s if side == "buy" else -s for side, _, s, _ in fills), D(0))
    assert ledger.quantity == quantity
    assert ledger.fees == total_fees
    assert ledger.realized_pnl + ledger.unrealized(mark) - ledger.fees == (
        cash - total_fees + quantity * mark
    )
    # Released cost is rounded onto the price·size grid, so PnL never grows stray digits.
    assert ledger.realized_pnl % (PERP.tick_size * PERP.step_size) == 0
    if quantity == 0:
        assert ledger.open_cost == 0 and ledger.unrealized(mark) == 0
