"""The ingest flow: exchange traffic in, checked and normalized events onto Kafka.

Wiring only. Input items are chunks (lists) of market events and dead letters, from either
- live cryptofeed feeds (`connectors.live_feeds.LiveFeedSource`), or
- recordings replayed through the same cryptofeed parsers, or hftbacktest's Binance files
  (`connectors.replay.recordings.Recordings`).
They are split per instrument (`venue:symbol`), each instrument's stream goes through its
book check (`models.ingest_check.InstrumentCheck`: a gap or a crossed book adds a dead letter
with the reason), and the sink routes each event by type: md.book, md.bbo, md.trades, keyed
`venue:symbol`, and dead letters to `deadletter`. See docs/ingest.md.

A replay is published once: `connectors.kafka.replays` marks the market topics with the
replay's id, so running the same recordings again publishes nothing, and a replay over
other data is refused unless `fresh` clears the topics first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from connectors.kafka import KafkaConfig, KafkaEventSink, connect_admin, require_topics, topic_name
from connectors.kafka.replays import ReplayMarker, replay_id
from connectors.live_feeds import LiveFeedSource
from connectors.memory import ChunkedSource
from connectors.replay.recordings import Recordings
from flows.operators import per_key_state
from flows.runner import Recovery, run_dataflow
from models.events import Event
from models.ingest_check import InstrumentCheck

# Where ingest writes: a deployment without these topics is a configuration error.
INGEST_TOPICS = ("md.book", "md.bbo", "md.trades", "deadletter")


class _Admission:
    """One instrument's `InstrumentCheck` as a keyed state (picklable for snapshots)."""

    __slots__ = ("check",)

    def __init__(self, check: InstrumentCheck) -> None:
        self.check = check

    def on_event(self, event: Event) -> list[Event]:
        out: list[Event] = []
        self.check.admit(event, out)
        return out


def build_ingest_flow(source: Source, sink: Sink, flow_id: str = "ingest") -> Dataflow:
    flow = Dataflow(flow_id)
    chunks = op.input("exchange", flow, source)
    checked = per_key_state(
        "book_check", chunks,
        lambda first: _Admission(InstrumentCheck(first.venue, first.symbol)),
        chunks_out=True,
    )
    op.output("kafka", checked, sink)
    return flow


def open_recordings(paths: Sequence[str | Path]) -> Recordings:
    """Recordings for replay; a missing file is an error now, not in the middle of the flow."""
    if not paths:
        raise ValueError("no recordings to replay")
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"no such recording: {', '.join(missing)}")
    return Recordings(paths)


def replay_source(recordings: Recordings, chunk_size: int = 512) -> ChunkedSource:
    # events() builds the cryptofeed feeds now, so unusable start-up data fails here.
    return ChunkedSource(recordings.events(), chunk_size)


class ReplayRefused(RuntimeError):
    """The market topics hold data a replay would be mixed with; the message says what."""


def check_kafka(config: KafkaConfig) -> None:
    """Raise `KafkaUnavailable` or `MissingTopicsError`, saying what to fix, before any flow."""
    topics = [topic_name(config.prefix, name) for name in INGEST_TOPICS]
    require_topics(connect_admin(config), topics, config.connect_timeout_s)


def run_ingest(
    mode: Literal["live", "replay"],
    kafka: KafkaConfig,
    *,
    paths: Sequence[str | Path] = (),
    instruments: Mapping[str, Sequence[str]] | None = None,
    feed_config: Mapping | None = None,
    chunk_size: int = 512,
    fresh: bool = False,
    recovery: Recovery | None = None,
) -> dict:
    """Ingest into Kafka until the input ends (replay) or the process is stopped (live).

    Replay takes `paths` (recordings, see `Recordings`) and returns its stats, which account
    for every recorded line; live takes `instruments` (`{"kraken": ["BTC/USD"], ...}`, unified
    symbols) and cryptofeed's `feed_config` (API keys). Configuration errors raise before
    anything runs.

    A replay already on the topics returns `{"replay": id, "published": False, ...}`; one
    over other data raises `ReplayRefused`, unless `fresh` deletes the topics' records
    first. Replays run without recovery: a replay cannot resume part-way (its source is a
    file read from the start), and an interrupted one is refused until cleared. `recovery`
    applies to live ingest.
    """
    check_kafka(kafka)
    if mode == "replay":
        recordings = open_recordings(paths)
        replay = replay_id(paths)
        with ReplayMarker(kafka) as marker:
            state = marker.state(replay)
            if fresh:
                marker.clear()
            elif state.status == "done":
                return {"replay": replay, "published": False, "messages": state.messages}
            elif state.status == "other":
                raise ReplayRefused(
                    f"the market topics already hold {state.messages} messages "
                    f"({_held(state.marker)}); replaying would mix or double them: "
                    "--fresh deletes them first"
                )
            marker.mark(replay, "started")
            source = replay_source(recordings, chunk_size)
            run_dataflow(build_ingest_flow(source, KafkaEventSink(kafka)))
            marker.mark(replay, "done")
        return {"replay": replay, "published": True, **recordings.stats()}
    if mode == "live":
        source = LiveFeedSource(instruments or {}, config=feed_config)
        run_dataflow(build_ingest_flow(source, KafkaEventSink(kafka)), recovery)
        return {}
    raise ValueError(f"ingest mode must be 'live' or 'replay', not {mode!r}")


def _held(marker: str | None) -> str:
    if marker is None:
        return "not from a replay"
    stage, _, replay = marker.partition(":")
    if stage == "started":
        return f"an interrupted replay {replay}"
    return f"replay {replay}"
