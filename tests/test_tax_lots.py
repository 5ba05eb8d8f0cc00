"""Tax lots (models.tax_lots): the four methods on hand-made fills and on the fill records of a
real backtest over a shared recording, checked against an independent FIFO written here."""

from __future__ import annotations

import doctest
import json
from collections import defaultdict, deque
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest

import models.tax_lots
from models.events import Fill
from models.instrument import Instrument
from models.tax_lots import DAY_NS, METHODS, TaxLotError, tax_lots
from quoteflow.results import fill_from_record
from tests.conftest import SHARED_DATA

D = Decimal
BTC = Instrument(venue="x", symbol="BTC/USD", base="BTC", quote="USD",
                 tick_size=D("0.01"), step_size=D("0.001"))
SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"
USDM_BTC = SHARED_DATA / "binance/usdm/btcusdt_20240808.gz"


def fill(ts, side, price, size, fee="0", currency="USD", trade_id=None) -> Fill:
    return Fill(venue="x", symbol="BTC/USD", ts=ts, client_order_id="c",
                trade_id=trade_id or f"t{ts}", side=side, price=D(price), size=D(size),
                fee=D(fee), fee_currency=currency, liquidity="maker")


def lots_of(fills, method):
    return tax_lots([("ann", "main", f) for f in fills], method, lambda venue, symbol: BTC)


def test_doctests():
    result = doctest.testmod(models.tax_lots)
    assert result.attempted > 0 and result.failed == 0


def test_each_method_closes_its_own_lot():
    fills = [fill(0, "buy", "100", "1"), fill(1, "buy", "300", "1"), fill(2, "buy", "200", "1"),
             fill(3, "sell", "250", "1")]
    basis = {m: lots_of(fills, m).disposals[0].cost_basis for m in METHODS}
    assert basis == {"fifo": 100, "lifo": 200, "hifo": 300, "average": 200}


def test_a_sale_past_the_holding_opens_a_short_lot_that_a_buy_closes():
    result = lots_of([fill(0, "buy", "100", "1"), fill(DAY_NS, "sell", "110", "3", fee="3"),
                      fill(2 * DAY_NS, "buy", "90", "2", fee="2")], "fifo")
    long, short = result.disposals
    assert (long.position, long.gain) == ("long", D("109") - 100)  # proceeds net of 1/3 fee
    assert (short.position, short.quantity, short.proceeds, short.cost_basis) == (
        "short", 2, D("218"), D("182"))
    assert (short.acquired_ts, short.disposed_ts, short.holding_days) == (DAY_NS, 2 * DAY_NS, 1)
    assert not result.open_lots


def test_a_base_currency_fee_changes_the_quantity_and_another_currency_is_refused():
    result = lots_of([fill(0, "buy", "100", "1", fee="0.01", currency="BTC")], "fifo")
    (lot,) = result.open_lots
    assert (lot.quantity, lot.cash) == (D("0.99"), D("-100"))
    with pytest.raises(TaxLotError, match="BNB"):
        lots_of([fill(0, "buy", "100", "1", fee="0.01", currency="BNB")], "fifo")
    assert lots_of([fill(0, "buy", "100", "1", fee="0", currency="BNB")], "fifo").open_lots


def test_long_term_after_more_than_365_days():
    terms = [lots_of([fill(0, "buy", "1", "1"), fill(days * DAY_NS, "sell", "2", "1")],
                     "fifo").disposals[0].term for days in (365, 366)]
    assert terms == ["short", "long"]


def test_an_unknown_method_is_refused():
    with pytest.raises(TaxLotError, match="fifo, lifo"):
        lots_of([], "fofi")


def independent_fifo(records: list[dict]) -> list[Decimal]:
    """FIFO straight from the fill records of a spot or linear instrument with fees in the
    quote: a queue of [signed quantity, cash] per instrument; a part's cash is its pro-rata
    share rounded half-even to 1e-18, the last part takes what is left (docs/compliance.md).
    """
    def share(amount, part, whole):
        return amount if part == whole else (amount * part / whole).quantize(
            D("1e-18"), ROUND_HALF_EVEN)

    queues: dict[str, deque] = defaultdict(deque)
    gains = []
    ordered = sorted(records, key=lambda r: (r["ts"], int(r["trade_id"].split("-")[-1])))
    with localcontext() as context:
        context.prec = 60
        for r in ordered:
            quantity = D(r["qty"]) if r["side"] == "buy" else -D(r["qty"])
            cash = -quantity * D(r["price"]) - D(r["fee"])
            queue = queues[r["instrument"]]
            while quantity and queue and (queue[0][0] > 0) != (quantity > 0):
                lot = queue[0]
                take = min(abs(quantity), abs(lot[0]))
                lot_part, fill_part = share(lot[1], take, abs(lot[0])), share(
                    cash, take, abs(quantity))
                gains.append(lot_part + fill_part)
                lot[1] -= lot_part
                lot[0] += take if lot[0] < 0 else -take
                cash -= fill_part
                quantity += take if quantity < 0 else -take
                if not lot[0]:
                    queue.popleft()
            if quantity:
                queue.append([quantity, cash])
    return gains


@pytest.fixture(scope="module")
def backtest_fills(tmp_path_factory, shared_data) -> list[dict]:
    """The fill records of real backtests (spot ETH and USD-M BTC, ../shared/data)."""
    from typer.testing import CliRunner

    from quoteflow.cli import app

    records = []
    for data in (SPOT_ETH, USDM_BTC):
        path = tmp_path_factory.mktemp("fills") / "fills.jsonl"
        result = CliRunner().invoke(app, ["backtest", "--data", str(data), "--fills", str(path),
                                          "--json", str(path.with_suffix(".json"))])
        assert result.exit_code == 0, result.output
        records += [json.loads(line) for line in path.read_text().splitlines()]
    assert len({r["instrument"] for r in records}) == 2 and len(records) > 100
    return records


def _lots(records, method):
    from connectors.venues.market_cache import instrument_for

    fills = [("default", "default", fill_from_record(r)) for r in records]
    return tax_lots(fills, method, instrument_for)


def test_fifo_gains_equal_an_independent_fifo_over_a_real_backtest_exactly(backtest_fills):
    gains = [d.gain for d in _lots(backtest_fills, "fifo").disposals]
    expected = independent_fifo(backtest_fills)
    assert len(gains) > 100
    assert gains == expected  # disposal by disposal, in the same order, to the last digit


def test_every_method_reconciles_to_the_same_cash_flow(backtest_fills):
    cash_flow = defaultdict(Decimal)
    for r in backtest_fills:  # the cash the fills moved, computed here from the records
        sign = 1 if r["side"] == "buy" else -1
        cash_flow[r["instrument"]] += -sign * D(r["qty"]) * D(r["price"]) - D(r["fee"])
    for method in METHODS:
        result = _lots(backtest_fills, method)
        assert {f"{b[2]}:{b[3]}": c for b, c in result.cash_flow.items()} == cash_flow
        for book, cash in result.cash_flow.items():
            gains = sum((d.gain for d in result.disposals if d.book == book), D(0))
            open_cash = sum((lot.cash for lot in result.open_lots if lot.book == book), D(0))
            assert gains + open_cash == cash, (method, book)
    # The methods do match different lots (the totals agree when every lot is closed).
    assert len({tuple(d.gain for d in _lots(backtest_fills, m).disposals) for m in METHODS}) == 4
