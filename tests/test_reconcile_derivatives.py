"""Reconciling derivatives: a futures account's wallet and positions against our fills and fees.

The pure part (models.execution.reconcile) is checked on USD-M linear and COIN-M inverse
ledgers. The whole pass (connectors.execution.reconcile) runs through ccxt's `binanceusdm`
class against `tests/ccxt_standin.py`'s `BinanceUsdmStandIn`, a local stand-in for Binance's
USD-M REST API (live exchanges are unreachable from here): it keeps a one-way position with
its average entry price, realises PnL when a fill reduces it, takes the USDT fee from the
wallet, and answers `fetch_balance` (margin balance in ccxt's `total`, the wallet in the raw
answer) and `fetch_positions` (`positionRisk` v3) as Binance does.
"""

from __future__ import annotations

import asyncio
import doctest
import json
import time
from decimal import Decimal

import ccxt
import pytest

import models.execution.reconcile
from connectors.audit_store import AuditStore, verify_audit
from connectors.execution import ccxt_structures
from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.live import CcxtVenue
from connectors.execution.reconcile import reconcile
from connectors.execution.retry import RetryPolicy
from connectors.secrets import ExchangeCredentials
from connectors.venues.market_cache import instrument_for
from models.accounting import PositionLedger
from models.events import Fill, OrderIntent, Quote
from models.execution.client_ids import client_order_id
from models.execution.reconcile import compare_balances, compare_positions, expected_balances
from models.instrument import Instrument
from models.risk import RiskEngine, parse_limits
from quoteflow.config import ConfigError, load_config
from tests.ccxt_standin import BinanceUsdmStandIn

D = Decimal
API_KEY, SECRET = "standin-key-5e21", "standin-secret-0b7d43"
PERP = "BTC/USDT:USDT"
LINEAR = instrument_for("binanceusdm", PERP)
INVERSE = Instrument(
    venue="binancecoinm", symbol="BTC/USD:BTC", base="BTC", quote="USD", settle="BTC",
    inverse=True, contract_size=D(100), tick_size=D("0.1"), step_size=D(1),
)
SPOT = instrument_for("binance", "BTC/USDT")
START = {"USDT": D("100000")}


def _fill(instrument: Instrument, side: str, price: str, size: str, fee: str) -> Fill:
    return Fill(venue=instrument.venue, symbol=instrument.symbol, ts=0, client_order_id="c",
                trade_id=f"{side}{price}{size}", side=side, price=D(price), size=D(size),
                fee=D(fee), fee_currency=instrument.fee_currency, liquidity="maker")


def _ledger(instrument: Instrument, *fills: tuple[str, str, str, str]) -> PositionLedger:
    ledger = PositionLedger(instrument)
    for fill in fills:
        ledger.apply(_fill(instrument, *fill))
    return ledger


# -- the pure part -----------------------------------------------------------------------------


def test_doctests():
    result = doctest.testmod(models.execution.reconcile)
    assert result.attempted > 0 and result.failed == 0


def test_a_linear_wallet_moves_by_realized_pnl_less_fees_through_partial_closes_and_a_flip():
    ledger = _ledger(
        LINEAR,
        ("buy", "59990.0", "0.003", "0.035994"),
        ("sell", "60010.0", "0.002", "0.024004"),  # partial close: +0.04 realized
        ("sell", "60100.0", "0.004", "0.048080"),  # closes 0.001 (+0.11), opens 0.003 short
        ("buy", "60000.0", "0.001", "0.012000"),  # short reduced at 60000: +0.1
    )
    assert ledger.quantity == D("-0.002")
    assert ledger.realized_pnl == D("0.25")
    fees = D("0.035994") + D("0.024004") + D("0.048080") + D("0.012000")
    expected = expected_balances(START, [ledger], futures_account=True)
    assert expected == {"USDT": D("100000") + D("0.25") - fees}  # no BTC: contracts, not coin
    venue = {"USDT": D("100000") + D("0.25") - fees}
    assert compare_balances(expected, venue) == {}
    assert compare_positions([ledger], {PERP: D("-0.002")}) == {}
    assert compare_positions([ledger], {}) == {PERP: (D("-0.002"), D(0))}


def test_an_inverse_wallet_moves_in_the_coin():
    # Short 3 contracts of 100 USD at 50000, 1 bought back at 40000: the coin wallet gains
    # 100·(1/40000 − 1/50000) = 0.0005 BTC, less the fees, also in BTC.
    ledger = _ledger(
        INVERSE,
        ("sell", "50000", "3", "0.0000012"),
        ("buy", "40000", "1", "0.0000005"),
    )
    assert ledger.realized_pnl == D("0.0005")
    expected = expected_balances({"BTC": D("2")}, [ledger], futures_account=True)
    assert expected == {"BTC": D("2") + D("0.0005") - D("0.0000017")}
    assert compare_positions([ledger], {INVERSE.symbol: D("-2")}) == {}


def test_spot_and_the_paper_venues_cash_flow_books_are_as_before():
    spot = _ledger(SPOT, ("buy", "60000.01", "0.003", "0.18"))
    perp = _ledger(LINEAR, ("buy", "60000.0", "0.002", "0.024"))
    start = {"USDT": D("1000")}
    cash_flows = expected_balances(start, [spot, perp])  # the paper venue's view
    assert cash_flows == {
        "BTC": D("0.005"),
        "USDT": D("1000") - D("180.00003") - D("0.18") - D("120.0") - D("0.024"),
    }
    on_account = expected_balances(start, [spot, perp], futures_account=True)
    assert on_account == {"BTC": D("0.003"), "USDT": D("1000") - D("180.00003") - D("0.18")
                          - D("0.024")}
    assert compare_positions([spot], {}) == {}  # spot holds coin, not a position


def test_ccxt_futures_balances_are_read_as_wallets_and_positions_signed():
    balance = {
        "total": {"USDT": "100000.03", "BNB": "1.5"},
        "info": {"assets": [
            {"asset": "USDT", "walletBalance": "99999.96", "marginBalance": "100000.03"},
        ]},
    }
    assert ccxt_structures.wallet_totals(balance) == {"USDT": D("99999.96"), "BNB": D("1.5")}
    spot = {"total": {"BTC": "1", "USDT": "5"}, "info": {"balances": []}}
    assert ccxt_structures.wallet_totals(spot) == {"BTC": D(1), "USDT": D(5)}
    hedged = [
        {"symbol": PERP, "contracts": "0.003", "side": "long"},
        {"symbol": PERP, "contracts": "0.001", "side": "short"},
        {"symbol": "ETH/USDT:USDT", "contracts": "0.5", "side": "short"},
        {"symbol": "SOL/USDT:USDT", "contracts": "1", "side": "long"},
        {"symbol": "SOL/USDT:USDT", "contracts": "1", "side": "short"},
    ]
    assert ccxt_structures.signed_contracts(hedged) == {
        PERP: D("0.002"), "ETH/USDT:USDT": D("-0.5"),
    }


# -- a whole pass on the USD-M stand-in --------------------------------------------------------


def _intent(intent_id: str, bid: str, ask: str, size: str) -> OrderIntent:
    now = time.time_ns()
    return OrderIntent(
        intent_id=intent_id, venue="binanceusdm", symbol=PERP, ts=now, strategy="test",
        bids=[Quote(D(bid), D(size))], asks=[Quote(D(ask), D(size))],
        reference_mid=D("60000.05"), trigger_receive_ts=now,
    )


def _records(audit_path) -> list[dict]:
    return [json.loads(line) for line in audit_path.read_text().splitlines()]


def _differences(audit_path, kind: str) -> list[dict]:
    return [r for r in _records(audit_path) if json.dumps(r).find(f'"difference": "{kind}"') >= 0]


def test_a_futures_account_reconciles_with_our_fills_and_fees(tmp_path):
    """Fills seen only by reconciliation (MISSING_FILL) leave no BALANCE or POSITION
    difference, with a position open (the margin balance then differs from the wallet by
    its unrealized PnL) and after a partial close; a position changed at the venue without
    a trade of ours is a POSITION difference, reported with both figures, which risk's
    position check counts until the venue agrees again."""
    audit_path = tmp_path / "audit.jsonl"

    async def scenario():
        async with BinanceUsdmStandIn(API_KEY, SECRET, START) as standin:
            venue = await CcxtVenue.connect(
                "binanceusdm", ExchangeCredentials(API_KEY, SECRET), sandbox=True,
                config=standin.ccxt_config(), capacity=20,
            )
            store = AuditStore(audit_path)
            executor = Executor(
                venue, [LINEAR],
                RiskEngine(parse_limits({"price_band_bps": "100", "max_position": "0.006"})),
                emit=lambda event: None, audit=store,
                config=ExecutorConfig(initial_balances=START,
                                      retry=RetryPolicy(base_delay_s=0.01)),
            )
            try:
                report = await reconcile(executor)
                assert (report.differences, report.error) == ({}, None)

                await executor.on_intent(_intent("i1", "59990.0", "60010.0", "0.003"))
                standin.fill(client_order_id("i1", "buy", 0), D("0.003"))
                report = await reconcile(executor)
                assert report.error is None
                assert report.differences == {"MISSING_FILL": 1, "ORDER_NOT_OPEN": 1}
                assert report.positions == {PERP: D("0.003")}
                ccxt_total = (await venue.exchange.fetch_balance())["total"]["USDT"]
                assert D(ccxt_total) != executor.balances["USDT"]  # unrealized PnL apart

                standin.fill(client_order_id("i1", "sell", 0), D("0.002"))  # partial close
                report = await reconcile(executor)
                assert report.differences == {"MISSING_FILL": 1, "ORDER_CHANGED": 1}
                ledger = executor.ledgers[LINEAR.key]
                assert (ledger.quantity, ledger.realized_pnl) == (D("0.001"), D("0.04"))
                assert executor.balances == {"USDT": standin.balances["USDT"]}
                assert executor.balances["USDT"] == START["USDT"] + D("0.04") - ledger.fees

                standin.position += D("0.004")  # e.g. a trade by another client of the account
                report = await reconcile(executor)
                assert report.differences == {"POSITION": 1}
                assert ledger.quantity == D("0.001")  # reported, no fill invented
                assert executor.unbooked == {LINEAR.key: D("0.004")}
                # Risk counts the venue's 0.005: a 0.002 bid could reach 0.007, over 0.006
                # (0.003 on the ledger alone); the ask reduces it and goes out.
                await executor.on_intent(_intent("i2", "59980.0", "60020.0", "0.002"))
                assert set(standin.open_orders()) == {client_order_id("i2", "sell", 0)}
                refused = [r for r in _records(audit_path) if r["action"] == "risk_decision"
                           and not r["payload"]["accepted"]]
                assert [r["payload"]["reason_code"] for r in refused] == ["MAX_POSITION"]

                standin.position -= D("0.004")  # the venue agrees with us again
                report = await reconcile(executor)
                assert "POSITION" not in report.differences and executor.unbooked == {}
            finally:
                store.close()
                await venue.close()
            assert ("GET", "/fapi/v3/positionRisk") in standin.requests

    asyncio.run(scenario())
    assert verify_audit(audit_path).ok
    [position] = _differences(audit_path, "POSITION")
    text = json.dumps(position)
    assert '"ledger": "0.001"' in text and '"venue": "0.005"' in text, text
    assert _differences(audit_path, "BALANCE") == []


def test_an_exchange_without_a_positions_endpoint_still_reconciles_the_rest(tmp_path):
    """ccxt reads no positions from some exchanges (`NotSupported`): the pass audits that and
    ends without an error, its order, trade and balance steps standing."""
    audit_path = tmp_path / "audit.jsonl"

    async def no_positions(*_args, **_kwargs):
        raise ccxt.NotSupported("fetchPositions() is not supported yet")

    async def scenario():
        async with BinanceUsdmStandIn(API_KEY, SECRET, START) as standin:
            venue = await CcxtVenue.connect(
                "binanceusdm", ExchangeCredentials(API_KEY, SECRET), sandbox=True,
                config=standin.ccxt_config(), capacity=20,
            )
            venue.exchange.fetch_positions = no_positions
            store = AuditStore(audit_path)
            executor = Executor(
                venue, [LINEAR], RiskEngine(parse_limits({"price_band_bps": "100"})),
                emit=lambda event: None, audit=store,
                config=ExecutorConfig(initial_balances=START),
            )
            try:
                report = await reconcile(executor)
            finally:
                store.close()
                await venue.close()
            return report

    report = asyncio.run(scenario())
    assert (report.differences, report.error) == ({}, None)
    actions = [r["action"] for r in _records(audit_path)]
    assert "reconcile_positions_unavailable" in actions and "reconcile_failed" not in actions


def test_initial_balances_are_configured_exactly(tmp_path):
    path = tmp_path / "execute.toml"

    def load(balances: str):
        path.write_text(f'[execute]\nsymbols = ["{PERP}"]\ninitial_balances = {balances}\n')
        return load_config(path, {})

    config = load('{ USDT = "100000.10" }')
    assert config.execute.balances() == {"USDT": D("100000.10")}
    for bad in ('{ USDT = "-1" }', '{ USDT = "lots" }', '{ USDT = "NaN" }'):
        with pytest.raises(ConfigError, match=r"execute\.initial_balances\.USDT must be a number"):
            load(bad)
