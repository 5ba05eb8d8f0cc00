"""One engine: the Kafka stack trades a recording as `quoteflow backtest` does.

The backtest (`quoteflow.runner.run_paper_trading`) runs the recording through the quote
session, the executor and the paper venue in one process, our fills going back to the
session at the local time our side hears of them. The Kafka stack gets the same recording on
md.* (the ingest replay) and runs as deployed: the quote flow (`quoteflow flow quote`) turns
it into orders.intents, `quoteflow execute` (paper venue, the same latencies, request budget
and risk limits) acts on them and publishes orders.events and risk.events.

On Kafka our fills reach the quote flow asynchronously: where a fill falls between two
market events depends on when the two processes read their inputs, so no free run of the two
at once is reproducible. The first two tests run the stages one after the other, each to the
end of its input (the quote flow sees no fill at all); the third runs them in lockstep:

- `test_the_kafka_stack_trades_a_recording_as_the_backtest_does` is the whole stack, with a
  strategy whose intents do not depend on our fills (`fixed-offset`, one tick behind the
  bookTicker touch, `[quote] top_of_book`, no inventory limit of the quote engine's within
  reach): the intents are equal in content and order, their ids equal up to the count of
  fills the session had applied (the backtest's `:n:0`, the quote flow's `:0:0`), and so the
  orders and fills (with their causality fields) are equal up to the client order ids made
  from those ids; the risk events (a position limit and self-trade refusals) are equal. Fills
  still change one thing on the L2 book: after a fill the session re-sends an unchanged
  desired state at the next book change (so the executor re-places the filled quote), and the
  L2 book changes without moving the touch; on the bookTicker alone every requote moves a
  quote, so that re-send is a change the quote flow makes too. The test checks the backtest's
  sessions did apply fills (its ids count them).
- `test_kafka_executor_trades_the_backtests_intents_as_the_backtest_does` covers a strategy
  whose quotes do depend on inventory (GLFT, L2 book): the executor on Kafka, given the
  backtest's own intents, produces its orders, fills and risk events exactly.
- `test_a_lockstep_replay_on_kafka_quotes_and_trades_as_the_backtest_does` is the closed
  loop: both processes side by side in lockstep (`[quote] lockstep`, `[execute] lockstep`,
  `models.lockstep`), our fills reaching the quote flow at the market event the backtest
  gives them to its session; GLFT's intents, ids included, and everything the executor
  publishes are the backtest's exactly. A turn per event costs a broker round trip, so it
  runs on the recording's first 50 s (docs/paper-venue.md, "One engine").
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.kafka import EventProducer, KafkaConfig
from connectors.paper.trading import PaperSettings
from connectors.replay.recordings import Recordings
from flows.ingest import run_ingest
from models.events import (
    Fill,
    HeardThrough,
    OrderEvent,
    OrderIntent,
    QuotedThrough,
    RiskEvent,
    decode,
)
from models.execution.client_ids import client_order_id
from models.latency import ConstantLatency
from models.risk import parse_limits
from quoteflow.cli import app
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA
from tests.flow_runs import QUOTEFLOW, intents_on, start_flow
from tests.kafka_service import kafka_toml, new_deployment, read_topic
from tests.recording_slices import slice_recording, without_book_ticker

pytestmark = pytest.mark.integration

SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"
# The executor's request budget on both sides (`[execute]` on Kafka, `PaperSettings` here).
RATE_LIMIT_MS, CAPACITY = 5.0, 20
# Reconciliation runs on the market clock in a backtest and on the wall clock on Kafka: here
# only the one at start-up, on both sides.
RECONCILE_S = 100_000
# Latencies other than the defaults, so that they visibly reach both venues ([paper] on Kafka).
ENTRY_MS, CANCEL_MS, RESPONSE_MS = 5.0, 7.0, 3.0
# Two lots of position, working orders included: the executor refuses orders past it.
MAX_POSITION = "0.02"


def _fill_key(fill: Fill, ids: dict[str, str]) -> tuple:
    return (fill.trade_id, ids.get(fill.client_order_id, fill.client_order_id), fill.side,
            fill.price, fill.size, fill.fee, fill.ts, fill.liquidity, fill.cause,
            fill.cause_exchange_ts, fill.order_trigger_exchange_ts, fill.order_arrival_exchange_ts)


def _order_key(event: OrderEvent, ids: dict[str, str]) -> tuple:
    return (ids.get(event.client_order_id, event.client_order_id), event.kind, event.side,
            event.price, event.size, event.filled, event.ts, event.reason)


def _risk_key(event: RiskEvent) -> tuple:
    return (event.ts, event.kind, event.reason_code, event.detail, event.state, event.venue,
            event.symbol)


def _write_config(path: Path, kafka: KafkaConfig, extra: str = "", *,
                  lockstep: bool = False) -> Path:
    """`quoteflow execute`'s configuration (and the quote flow's, with `extra`)."""
    path.write_text(
        kafka_toml(kafka)
        + f'[execute]\nexchange = "binance"\nsymbols = ["ETH/USDT"]\n'
        f"paper_rate_limit_ms = {RATE_LIMIT_MS}\nrate_limit_capacity = {CAPACITY}\n"
        f'reconcile_interval_s = {RECONCILE_S}\naudit_path = "{path.parent / "audit.jsonl"}"\n'
        f"lockstep = {str(lockstep).lower()}\n"
        + extra
    )
    return path


def _execute_until_end(config: Path) -> None:
    result = CliRunner().invoke(app, ["execute", "--config", str(config), "--until-end"])
    assert result.exit_code == 0, result.output


def _kafka_output(kafka: KafkaConfig) -> list:
    return [decode(v) for topic in ("orders.events", "risk.events")
            for _, _, v in read_topic(kafka, topic)]


def _assert_same_trading(live: list, backtest: list, ids: dict[str, str] | None = None) -> None:
    """Orders and fills equal (client order ids translated by `ids`, Kafka's to the
    backtest's), and risk events too."""
    ids = ids or {}
    fills = sorted(_fill_key(e, {}) for e in backtest if type(e) is Fill)
    assert fills, "the backtest should trade"
    assert sorted(_fill_key(e, ids) for e in live if type(e) is Fill) == fills
    assert sorted(_order_key(e, ids) for e in live if type(e) is OrderEvent) == sorted(
        _order_key(e, {}) for e in backtest if type(e) is OrderEvent
    )
    assert sorted(_risk_key(e) for e in live if type(e) is RiskEvent) == sorted(
        _risk_key(e) for e in backtest if type(e) is RiskEvent
    )


def _paper(**risk: str) -> PaperSettings:
    return PaperSettings(
        latency=ConstantLatency.from_ms(ENTRY_MS, CANCEL_MS, RESPONSE_MS),
        rate_limit_ms=RATE_LIMIT_MS, rate_limit_capacity=CAPACITY,
        reconcile_interval_ms=RECONCILE_S * 1000, risk_limits=parse_limits(risk),
    )


PAPER_TOML = (f"[paper]\norder_latency_ms = {ENTRY_MS}\ncancel_latency_ms = {CANCEL_MS}\n"
              f"response_latency_ms = {RESPONSE_MS}\n")


def _split_id(intent_id: str) -> tuple[str, int, str]:
    """(the engine's id, fills the session had applied, predictions applied)."""
    engine_id, fills, predictions = intent_id.rsplit(":", 2)
    return engine_id, int(fills), predictions


def _content(intent: OrderIntent) -> tuple:
    return (_split_id(intent.intent_id)[0], intent.venue, intent.symbol, intent.ts,
            intent.strategy, intent.bids, intent.asks, intent.reference_mid,
            intent.trigger_receive_ts, intent.trigger_exchange_ts)


def _client_ids(live: list[OrderIntent], backtest: list[OrderIntent]) -> dict[str, str]:
    """Kafka's client order id → the backtest's, for every order an intent may place."""
    ids = {}
    for ours, theirs in zip(live, backtest, strict=True):
        for side, quotes in (("buy", ours.bids), ("sell", ours.asks)):
            for level in range(len(quotes)):
                ids[client_order_id(ours.intent_id, side, level)] = client_order_id(
                    theirs.intent_id, side, level
                )
    return ids


def _backtest(options: TradingOptions) -> tuple[list, list[OrderIntent]]:
    """The backtest of the recording: everything it reported, and its intents."""
    out: list = []
    run_paper_trading(Recordings([SPOT_ETH]).events(), options, on_output=out.extend)
    intents = [e for e in out if type(e) is OrderIntent]
    assert len(intents) > 100
    return out, intents


def _replayed(kafka_bootstrap: str) -> KafkaConfig:
    """A new deployment with the recording on md.* (`quoteflow ingest replay`'s flow)."""
    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", kafka, paths=[SPOT_ETH])
    return kafka


def test_the_kafka_stack_trades_a_recording_as_the_backtest_does(kafka_bootstrap, tmp_path):
    params = {"offset_ticks": "1", "order_size": "0.01"}
    lots = 1000  # the quote engine's own inventory limit, far out of reach: the executor's binds
    options = TradingOptions(
        strategy="fixed-offset", params=params, top_of_book=True,
        max_inventory_lots=Decimal(lots), paper=_paper(max_position=MAX_POSITION),
    )
    backtest, expected = _backtest(options)
    kafka = _replayed(kafka_bootstrap)
    quote = (f'[quote]\nstrategy = "fixed-offset"\nmax_inventory_lots = "{lots}"\n'
             f"top_of_book = true\n[quote.params]\n"
             + "".join(f'{k} = "{v}"\n' for k, v in params.items()))
    config = _write_config(tmp_path / "quoteflow.toml", kafka,
                           quote + PAPER_TOML + f'[risk]\nmax_position = "{MAX_POSITION}"\n')
    flow = start_flow(config, "--until-end", log=tmp_path / "flow.log")
    assert flow.wait(timeout=120) == 0, (tmp_path / "flow.log").read_text()
    intents = intents_on(kafka)
    _execute_until_end(config)

    assert [_content(i) for i in intents] == [_content(i) for i in expected]
    assert {_split_id(i.intent_id)[1:] for i in intents} == {(0, "0")}
    applied = [_split_id(i.intent_id)[1] for i in expected]
    assert 0 < applied[-1] <= sum(type(e) is Fill for e in backtest)  # fills reached it
    risk = Counter(e.reason_code for e in backtest if type(e) is RiskEvent)
    assert risk["MAX_POSITION"] > 0
    _assert_same_trading(_kafka_output(kafka), backtest, _client_ids(intents, expected))


def test_kafka_executor_trades_the_backtests_intents_as_the_backtest_does(
    kafka_bootstrap, tmp_path: Path
):
    options = TradingOptions(strategy="glft", params={"gamma": "0.01"}, paper=_paper())
    backtest, intents = _backtest(options)
    kafka = _replayed(kafka_bootstrap)
    producer = EventProducer(kafka)
    producer.send_all(intents)
    producer.close()
    _execute_until_end(_write_config(tmp_path / "quoteflow.toml", kafka, PAPER_TOML))
    _assert_same_trading(_kafka_output(kafka), backtest)


# The first 6,000 lines of the recording without its bookTicker stream: 1,489 events over the
# first 50 s, past the estimators' warm-up; a lockstep replay takes a broker round trip per
# event (docs/benchmarks.md, "One lockstep turn").
LOCKSTEP_LINES = 6000


def test_a_lockstep_replay_on_kafka_quotes_and_trades_as_the_backtest_does(
    kafka_bootstrap, tmp_path: Path
):
    """The closed loop: GLFT, whose quotes move with the inventory our fills change, quoted
    by `quoteflow flow quote` and traded by `quoteflow execute` side by side, in lockstep
    (`[quote] lockstep`, `[execute] lockstep`): the intents, ids included, and the orders,
    fills and risk events are the backtest's exactly."""
    recording = slice_recording(SPOT_ETH, tmp_path / "ethusdt_20240808.gz", LOCKSTEP_LINES,
                                keep=without_book_ticker)
    params = {"gamma": "0.01"}
    options = TradingOptions(strategy="glft", params=params,
                             paper=_paper(max_position=MAX_POSITION))
    backtest: list = []
    run_paper_trading(Recordings([recording]).events(), options, on_output=backtest.extend)
    expected = [e for e in backtest if type(e) is OrderIntent]
    assert _split_id(expected[-1].intent_id)[1] > 0  # the session quoted on fills it heard
    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", kafka, paths=[recording])
    quote = ('[quote]\nstrategy = "glft"\nlockstep = true\n[quote.params]\n'
             + "".join(f'{k} = "{v}"\n' for k, v in params.items()))
    config = _write_config(tmp_path / "quoteflow.toml", kafka,
                           quote + PAPER_TOML + f'[risk]\nmax_position = "{MAX_POSITION}"\n',
                           lockstep=True)
    flow = start_flow(config, "--until-end", log=tmp_path / "flow.log")
    try:
        _execute_until_end(config)
        assert flow.wait(timeout=120) == 0, (tmp_path / "flow.log").read_text()
    finally:
        flow.kill()
    published = intents_on(kafka)
    assert [e for e in published if type(e) is OrderIntent] == expected
    marks = [e.receive_ts for e in published if type(e) is QuotedThrough]
    assert marks == [e.receive_ts for e in Recordings([recording]).events()]
    risk = Counter(e.reason_code for e in backtest if type(e) is RiskEvent)
    assert risk["MAX_POSITION"] > 0
    _assert_same_trading(_kafka_output(kafka), backtest)


def test_a_lockstep_executor_given_another_markets_marks_stops_with_one_line(
    kafka_bootstrap, tmp_path: Path
):
    """orders.intents holds a mark of an event this market never had (a deployment reused
    for another replay): the executor says so in one line and exits 1, no traceback."""
    recording = slice_recording(SPOT_ETH, tmp_path / "ethusdt_20240808.gz", 50,
                                keep=without_book_ticker)
    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", kafka, paths=[recording])
    producer = EventProducer(kafka)
    producer.send(QuotedThrough(venue="binance", symbol="ETH/USDT", receive_ts=1))
    producer.close()
    config = _write_config(tmp_path / "quoteflow.toml", kafka, PAPER_TOML, lockstep=True)
    result = CliRunner().invoke(app, ["execute", "--config", str(config), "--until-end"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("the quote flow quoted ('binance', 'ETH/USDT', 1)")
    assert len(result.output.strip().splitlines()) == 1


def test_a_lockstep_quote_flow_given_another_markets_marks_stops_with_one_line(
    kafka_bootstrap, tmp_path: Path
):
    """orders.events holds the mark of this market's first event, then one of an event it
    never had (a deployment reused for another replay): `quoteflow flow quote` quotes the
    first, publishes nothing after the mismatch, and ends cleanly (no final mark needed: the
    halt ends its inputs) with one line naming it on stderr and exit 1, no traceback and no
    Bytewax panic."""
    recording = slice_recording(SPOT_ETH, tmp_path / "ethusdt_20240808.gz", 50,
                                keep=without_book_ticker)
    events = list(Recordings([recording]).events())
    first, second = events[0].receive_ts, events[1].receive_ts
    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", kafka, paths=[recording])
    producer = EventProducer(kafka)
    for receive_ts in (first, 1):
        producer.send(HeardThrough(venue="binance", symbol="ETH/USDT", receive_ts=receive_ts))
    producer.close()
    config = _write_config(tmp_path / "quoteflow.toml", kafka,
                           '[quote]\nstrategy = "glft"\nlockstep = true\n', lockstep=True)
    result = subprocess.run(
        [str(QUOTEFLOW), "flow", "quote", "--config", str(config), "--until-end"],
        capture_output=True, text=True, timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "panicked" not in output, output
    # librdkafka's own log lines ("%3|<time>|FAIL|..."), not ours: a consumer closed by the
    # halt while its coordinator connection is still in its SASL handshake logs the torn
    # connection on the way out (seen under load). The error itself is one line.
    ours = [line for line in result.stderr.strip().splitlines()
            if not re.match(r"%\d\|\d+\.\d+\|", line)]
    assert ours == [
        "binance:ETH/USDT: the executor matched the market event received at 1, the quote "
        f"flow's next is at {second}"
    ], output
    published = intents_on(kafka)
    assert published[-1] == QuotedThrough(venue="binance", symbol="ETH/USDT", receive_ts=first)
    assert [e for e in published if type(e) is QuotedThrough] == published[-1:]
