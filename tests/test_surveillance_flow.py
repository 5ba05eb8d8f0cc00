"""The surveillance flow on the real broker: wash-trade, spoofing and layering sequences on
`orders.events` (three instruments of one account, with ordinary quoting around them) come
out as alerts on `surveillance.alerts`, keyed by instrument; a malformed message goes to the
dead-letter topic; ordinary quoting alone raises nothing. `quoteflow flow surveillance` runs
it as a process with the thresholds of the `[surveillance]` section."""

from __future__ import annotations

import pytest
from bytewax.testing import run_main
from confluent_kafka import Producer

from connectors.kafka import topic_name
from flows.surveillance import build_surveillance_kafka_flow
from models.events import DeadLetter, SurveillanceAlert, decode
from models.surveillance import SurveillanceConfig
from tests.flow_runs import publish, start_flow, write_config
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


def test_the_flow_command_runs_it_with_the_configured_thresholds(kafka_bootstrap, tmp_path):
    config = new_deployment(kafka_bootstrap)
    quiet = Orders("binance", "BTC/USDT")
    quiet.quotes(30, T0)  # 60 order messages within a second each way: only a tight limit
    publish(config, quiet.events)
    toml = write_config(tmp_path / "quoteflow.toml", config)
    toml.write_text(toml.read_text() + "[surveillance]\nmax_messages = 3\ncooldown_s = 3600\n")
    process = start_flow(toml, "--until-end", log=tmp_path / "flow.log", flow="surveillance")
    assert process.wait(timeout=120) == 0, (tmp_path / "flow.log").read_text()[-2000:]
    [(key, alert)] = _alerts(config)
    assert (key, alert.kind, alert.threshold) == (b"binance:BTC/USDT", "message_rate", 3.0)
