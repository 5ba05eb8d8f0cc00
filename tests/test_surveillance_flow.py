"""The surveillance flow on the real broker: wash-trade, spoofing and layering sequences on
`orders.events` (three instruments of one account, with ordinary quoting around them) come
out as alerts on `surveillance.alerts`, keyed by instrument; a malformed message goes to the
dead-letter topic; ordinary quoting alone raises nothing."""

from __future__ import annotations

import pytest
from bytewax.testing import run_main
from confluent_kafka import Producer

from connectors.kafka import topic_name
from flows.surveillance import build_surveillance_kafka_flow
from models.events import DeadLetter, SurveillanceAlert, decode
from models.surveillance import SurveillanceConfig
from tests.flow_runs import publish
from tests.kafka_service import new_deployment, read_topic
from tests.surveillance_cases import T0, Orders, layering, spoof, wash

pytestmark = pytest.mark.integration


def _alerts(config) -> list[tuple[bytes | None, SurveillanceAlert]]:
    return [(key, decode(value)) for _, key, value in read_topic(config, "surveillance.alerts")]


def test_injected_patterns_raise_their_alerts_on_kafka(kafka_bootstrap):
    config = new_deployment(kafka_bootstrap)
    washed, spoofed = Orders("binance", "BTC/USDT"), Orders("binanceusdm", "BTC/USDT:USDT")
    layered, quiet = Orders("binance", "ETH/USDT"), Orders("okx", "BTC/USDT")
    wash(washed)
    spoof(spoofed, traded=True)
    layering(layered)
    quiet.quotes(50, T0)
    publish(config, [*washed.events, *spoofed.events, *layered.events, *quiet.events])
    producer = Producer(config.client_settings())
    producer.produce(topic_name(config.prefix, "orders.events"), b'{"type": "fill", "venue":',
                     key=b"acct-1")
    producer.flush(10)

    run_main(build_surveillance_kafka_flow(config, SurveillanceConfig(), tail=False))

    alerts = _alerts(config)
    assert sorted((key, alert.kind) for key, alert in alerts) == [
        (b"binance:BTC/USDT", "wash_trade"),
        (b"binance:ETH/USDT", "layering"),
        (b"binanceusdm:BTC/USDT:USDT", "spoofing"),
    ]
    # What the same detectors raise in-process, and the deployment's account on each.
    expected = {a.alert_id for o in (washed, spoofed, layered) for a in o.alerts}
    assert {alert.alert_id for _, alert in alerts} == expected
    assert {alert.account for _, alert in alerts} == {config.account}
    [letter] = [decode(value) for _, _, value in read_topic(config, "deadletter")]
    assert isinstance(letter, DeadLetter) and "orders.events" in letter.source
