"""Replaying the same recording twice does not double the market data (a real broker).

The market topics carry a replay marker (connectors.kafka.replays): the same recordings again
publish nothing, other data is refused with one line, and `--fresh` clears the topics first.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from connectors.kafka import EventProducer
from connectors.kafka.replays import ReplayMarker, replay_id
from flows.ingest import ReplayRefused, run_ingest
from models.events import DeadLetter, decode
from quoteflow.cli import app
from tests.conftest import SHARED_DATA
from tests.flow_runs import write_config
from tests.kafka_service import new_deployment, read_topic

pytestmark = pytest.mark.integration

SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"
SPOT_BTC = SHARED_DATA / "binance/spot/btcusdt_20240808.gz"
MARKET = ("md.book", "md.bbo", "md.trades")


def _on_topics(kafka) -> dict[str, list]:
    return {name: read_topic(kafka, name) for name in MARKET}


def test_the_same_replay_twice_publishes_once(kafka_bootstrap, shared_data):
    kafka = new_deployment(kafka_bootstrap)
    first = run_ingest("replay", kafka, paths=[SPOT_ETH])
    assert first["published"] is True
    once = _on_topics(kafka)
    assert sum(map(len, once.values())) > 1000

    again = run_ingest("replay", kafka, paths=[SPOT_ETH])

    assert again == {"replay": first["replay"], "published": False,
                     "messages": sum(map(len, once.values()))}
    assert _on_topics(kafka) == once


def test_a_replay_over_other_data_is_refused_and_fresh_replaces_it(kafka_bootstrap, tmp_path,
                                                                    shared_data):
    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", kafka, paths=[SPOT_ETH])
    config = write_config(tmp_path / "quoteflow.toml", kafka)

    refused = CliRunner().invoke(app, ["ingest", "replay", str(SPOT_BTC), "-c", str(config)])

    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and "already hold" in lines[0] and "--fresh" in lines[0]
    assert "Traceback" not in refused.output

    fresh = CliRunner().invoke(
        app, ["ingest", "replay", str(SPOT_BTC), "-c", str(config), "--fresh"]
    )
    assert fresh.exit_code == 0, fresh.output
    alone = new_deployment(kafka_bootstrap)
    run_ingest("replay", alone, paths=[SPOT_BTC])
    with ReplayMarker(kafka) as marker:
        state = marker.state(replay_id([SPOT_BTC]))
    expected = sum(map(len, _on_topics(alone).values()))
    assert (state.status, state.messages) == ("done", expected)


def test_an_interrupted_or_added_to_replay_is_refused(kafka_bootstrap, shared_data):
    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", kafka, paths=[SPOT_ETH])
    producer = EventProducer(kafka)  # a live ingest, say, added to the same topics
    producer.send_all([_trade_like(kafka)])
    producer.close()
    with pytest.raises(ReplayRefused, match="already hold"):
        run_ingest("replay", kafka, paths=[SPOT_ETH])
    with ReplayMarker(kafka) as marker:
        marker.mark(replay_id([SPOT_ETH]), "started")
    with pytest.raises(ReplayRefused, match="interrupted replay"):
        run_ingest("replay", kafka, paths=[SPOT_ETH])


def _trade_like(kafka):
    first = read_topic(kafka, "md.trades")[0]
    event = decode(first[2])
    assert not isinstance(event, DeadLetter)
    return event
