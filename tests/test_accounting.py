"""PositionLedger: average cost through flips, exact cash-flow identity, bad fills refused;
linear (USD-M, PnL in USDT) and inverse (COIN-M, contracts of 10 USD, PnL in ETH)."""

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
COINM = all_instruments()["binancecoinm:ETH/USD:ETH"]  # inverse, 10 USD a contract
_ids = iter(range(10**9))


def fill(side: str, price: str | Decimal, size: str | Decimal, fee: str | Decimal = "0",
         instrument=PERP) -> Fill:
    return Fill(
        venue=instrument.venue, symbol=instrument.symbol, ts=1, client_order_id="c",
        trade_id=str(next(_ids)), side=side, price=D(price), size=D(size), fee=D(fee),
        fee_currency=instrument.fee_currency, liquidity="maker",
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


def test_inverse_pnl_is_contracts_times_contract_size_times_the_change_of_one_over_price():
    ledger = PositionLedger(COINM)
    ledger.apply(fill("buy", "2000.00", "10", "0.00001", COINM))
    assert ledger.quantity == 10 and ledger.average_price == D("2000")
    # Long 100 USD at 2000: worth 0.05 ETH then, 0.04 ETH at 2500: +0.01 ETH.
    assert ledger.unrealized(D("2500.00")) == D("0.01")
    ledger.apply(fill("sell", "2500.00", "4", "0.00001", COINM))
    assert ledger.realized_pnl == 4 * 10 * (D(1) / 2000 - D(1) / 2500) == D("0.004")
    ledger.apply(fill("sell", "2500.00", "10", "0", COINM))  # through zero: short 4 at 2500
    assert ledger.realized_pnl == D("0.01") and ledger.quantity == -4
    assert ledger.average_price == D("2500") and ledger.fees == D("0.00002")
    # Short 40 USD at 2500 gains when ETH falls: 40/2000 - 40/2500 = 0.004 ETH.
    assert ledger.unrealized(D("2000.00")) == D("0.004")
    assert ledger.volume == D(240)  # USD notional: 24 contracts of 10 USD
    assert ledger.position(5, D("2000.00")).fees == D("0.00002")


def test_inverse_fees_are_in_the_coin():
    assert COINM.fee_currency == "ETH" and PERP.fee_currency == "USDT"
    ledger = PositionLedger(COINM)
    with pytest.raises(ValueError, match="fee in USD, the ledger counts ETH"):
        ledger.apply(msgspec.structs.replace(fill("buy", "2000", "1", "0", COINM),
                                             fee_currency="USD"))


coinm_prices = st.integers(min_value=100_000, max_value=500_000).map(lambda n: n * COINM.tick_size)
coinm_sizes = st.integers(min_value=1, max_value=500).map(D)
coinm_fills = st.lists(st.tuples(st.sampled_from(("buy", "sell")), coinm_prices, coinm_sizes, fees),
                       max_size=60)


@given(fills=coinm_fills, mark=coinm_prices)
def test_inverse_pnl_equals_cash_flow_in_coin_exactly(fills, mark):
    ledger = PositionLedger(COINM)
    cash = D(0)
    for side, price, size, fee in fills:
        ledger.apply(fill(side, price, size, fee, COINM))
        value = COINM.settle_value(price, size)  # size·10/price, to 1e-12 ETH
        cash += value if side == "buy" else -value
    total_fees = sum((f[3] for f in fills), D(0))
    quantity = sum((s if side == "buy" else -s for side, _, s, _ in fills), D(0))
    mark_value = COINM.settle_value(mark, abs(quantity))
    assert ledger.quantity == quantity
    assert ledger.realized_pnl + ledger.unrealized(mark) - ledger.fees == (
        cash - total_fees - (mark_value if quantity > 0 else -mark_value)
    )
    assert ledger.realized_pnl % COINM.value_quantum == 0
