"""What one turn of a quote-flow/executor lockstep over Kafka would cost (docs/paper-venue.md).

A closed loop on Kafka that gives the backtest's intents needs the two processes to take
turns at every market event: the quote flow says how far it has quoted, the executor moves
the market one event on and answers with the fills heard by then (in a Kafka transaction,
as `quoteflow execute` publishes), and only then does the quote flow see that event. This
times that round trip alone, without any work on either side: a plain producer's message is
read by a `read_committed` consumer, answered in a transaction and read back the same way.

Uses the broker at QUOTEFLOW_KAFKA__BOOTSTRAP when set, else starts one of its own
(`bench.e2e_kafka`). Writes out/bench/lockstep_turn.json.

    .venv/bin/python -m bench.lockstep_turn --turns 500
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
from rich.progress import track

from bench.common import ROOT, machine, write_json
from bench.e2e_kafka import _Broker
from connectors.kafka.config import connect_admin


def _consumer(settings: dict, topic: str) -> Consumer:
    consumer = Consumer({**settings, "group.id": f"lockstep-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed", "fetch.wait.max.ms": 1})
    consumer.subscribe([topic])
    return consumer


def _next(consumer: Consumer) -> None:
    while True:
        message = consumer.poll(0.05)
        if message is not None and not message.error():
            return


def measure(turns: int) -> dict:
    broker = _Broker()
    try:
        settings = broker.config.client_settings()
        suffix = uuid.uuid4().hex[:8]
        progress, answer = f"lockstep.quote.{suffix}", f"lockstep.execute.{suffix}"
        admin = connect_admin(broker.config)
        for future in admin.create_topics([NewTopic(progress, 1, 1),
                                           NewTopic(answer, 1, 1)]).values():
            future.result()
        quote = Producer({**settings, "linger.ms": 0})
        executor = Producer({**settings, "linger.ms": 0, "transactional.id": f"ls-{suffix}"})
        executor.init_transactions()
        executor_in, quote_in = _consumer(settings, progress), _consumer(settings, answer)
        millis = []
        for turn in track(range(turns + 20), description="lockstep turns"):
            start = time.perf_counter()
            quote.produce(progress, b"intents complete through event n")
            quote.flush()
            _next(executor_in)
            executor.begin_transaction()
            executor.produce(answer, b"fills heard by event n+1")
            executor.commit_transaction()
            _next(quote_in)
            if turn >= 20:  # the first turns join the groups and warm the connections
                millis.append((time.perf_counter() - start) * 1000)
        for consumer in (executor_in, quote_in):
            consumer.close()
        del quote, executor  # closed before the broker stops, or they log its absence
    finally:
        broker.stop()
    millis.sort()
    return {"turns": len(millis), "mean_ms": round(statistics.fmean(millis), 2),
            **{f"p{q}_ms": round(millis[min(len(millis) - 1, len(millis) * q // 100)], 2)
               for q in (50, 90, 99)}}


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = parser.parse_args(argv)
    report = {"machine": machine(), "result": measure(args.turns)}
    write_json(args.out / "lockstep_turn.json", report)
    print(report["result"])
    return report


if __name__ == "__main__":
    main()
