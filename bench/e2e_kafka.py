"""End-to-end tick → intent latency through Kafka on loopback, stepped over input rates.

For each rate a fresh deployment (topic prefix) and a fresh `quoteflow flow quote` process
(1 worker, live mode) on a real broker. The Binance recordings'
events are sent at the rate, paced in 1 ms slices, and the wall clock is noted as each is
produced, by its `receive_ts` (kept as recorded, so the models see the market's own time);
the flow copies that into the intent it triggers (`trigger_receive_ts`). A consumer thread
of `orders.intents` takes the wall clock when an intent arrives: latency = consumption −
production of the triggering event, both on this machine's clock, so the
producer's client, the broker (twice), the flow's consumer, decode, book, quote engine and
the flow's producer are all inside. The first `--warmup-s` of each step are not counted.

    python -m bench.e2e_kafka [--rates 5000,10000,20000,30000] [--seconds 8]

Uses the broker at QUOTEFLOW_KAFKA__BOOTSTRAP when set, else starts one with
scripts/services/kafka.sh. Writes out/bench/e2e_kafka.json and docs/img/e2e_kafka.png.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from confluent_kafka import Consumer, TopicPartition

from bench.common import ROOT, SHARED_DATA, machine, write_json
from connectors.kafka import EventProducer, KafkaConfig, connect_admin, ensure_topics
from connectors.kafka.topics import topic_name
from connectors.replay.recordings import Recordings
from models.events import decode

TARGET_P99_MS = 10.0
TARGET_RATE = 20_000
KAFKA_SCRIPT = ROOT / "scripts" / "services" / "kafka.sh"
QUOTEFLOW = Path(sys.executable).parent / "quoteflow"
DATA = sorted((SHARED_DATA / "binance").glob("*/*.gz"))
FLOW_START_S = 5.0  # imports, Bytewax start-up, partition assignment
SLICE_S = 0.001


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5000,10000,20000,30000",
                        help="input events/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per rate")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="not counted, per rate")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "img" / "e2e_kafka.png")
    args = parser.parse_args(argv)
    args.rates = [int(r) for r in args.rates.split(",")]
    if any(r <= 0 for r in args.rates) or args.seconds <= 0 or args.warmup_s < 0:
        parser.error("rates and --seconds must be positive, --warmup-s >= 0")
    return args


class _Broker:
    """The configured broker, or one of our own for the run."""

    def __init__(self) -> None:
        self.bootstrap = os.environ.get("QUOTEFLOW_KAFKA__BOOTSTRAP")
        self._directory: str | None = None
        if self.bootstrap is None:
            self._directory = tempfile.mkdtemp(prefix="e2e-kafka-")
            ports = [str(_free_port()), str(_free_port())]
            started = subprocess.run([str(KAFKA_SCRIPT), "start", self._directory, *ports],
                                     capture_output=True, text=True, check=True, timeout=180)
            self.bootstrap = started.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self._directory is not None:
            subprocess.run([str(KAFKA_SCRIPT), "stop", self._directory], check=False, timeout=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_intents(config: KafkaConfig, stop: threading.Event, out: list) -> None:
    """(trigger receive_ts, wall clock when consumed) of every intent."""
    topic = topic_name(config.prefix, "orders.intents")
    consumer = Consumer({"bootstrap.servers": config.bootstrap, "group.id": "bench",
                         "fetch.wait.max.ms": 1, "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    while not stop.is_set():
        for message in consumer.consume(1000, 0.05):
            now = time.time_ns()
            if message.error() is None:
                out.append((decode(message.value()).trigger_receive_ts, now))
    consumer.close()


def _send_paced(producer: EventProducer, events: list, rate: int, sent_at: dict) -> float:
    """Send at `rate` events/s, noting when each went by its receive_ts; returns the rate."""
    per_slice = max(1, round(rate * SLICE_S))
    interval = per_slice / rate
    start = time.perf_counter()
    send = producer.send
    for index in range(0, len(events), per_slice):
        due = start + (index // per_slice) * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for event in events[index:index + per_slice]:
            sent_at[event.receive_ts] = time.time_ns()
            send(event)
    producer.flush()
    return len(events) / (time.perf_counter() - start)


def run_rate(bootstrap: str, events: list, rate: int, seconds: float, warmup_s: float,
             workdir: Path) -> dict:
    config = KafkaConfig(bootstrap=bootstrap, prefix=f"bench{uuid.uuid4().hex[:8]}")
    ensure_topics(connect_admin(config), config.prefix)
    config_file = workdir / f"{config.prefix}.toml"
    config_file.write_text(f'[kafka]\nbootstrap = "{bootstrap}"\nprefix = "{config.prefix}"\n')
    log = workdir / f"{config.prefix}.log"
    with log.open("wb") as out:
        flow = subprocess.Popen([str(QUOTEFLOW), "flow", "quote", "--config", str(config_file)],
                                stdout=out, stderr=subprocess.STDOUT)
    stop, consumed, sent_at = threading.Event(), [], {}
    reader = threading.Thread(target=_read_intents, args=(config, stop, consumed))
    reader.start()
    try:
        time.sleep(FLOW_START_S)
        if flow.poll() is not None:
            raise RuntimeError(f"the flow exited: {log.read_text()[-2000:]}")
        count = min(len(events), int(rate * (seconds + warmup_s)))
        producer = EventProducer(config)
        measure_from = time.time_ns() + int(warmup_s * 1e9)
        achieved = _send_paced(producer, events[:count], rate, sent_at)
        time.sleep(2.0)  # let the tail through
    finally:
        stop.set()
        reader.join()
        flow.terminate()
        try:
            flow.wait(timeout=10)
        except subprocess.TimeoutExpired:
            flow.kill()
    counted = np.array(
        [at - sent_at[ts] for ts, at in consumed if sent_at[ts] >= measure_from], dtype=np.int64
    )
    if counted.size == 0:
        raise RuntimeError(f"no intents at {rate} events/s; flow log: {log}")
    ms = counted / 1e6
    return {
        "rate": rate, "achieved_rate": round(achieved), "events": count,
        "intents": int(counted.size),
        "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
        "p99.9_ms": float(np.percentile(ms, 99.9)), "max_ms": float(ms.max()),
    }


def chart(results: list[dict], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rates = [r["achieved_rate"] for r in results]
    for name in ("p50_ms", "p99_ms", "p99.9_ms"):
        ax.plot(rates, [r[name] for r in results], marker="o", label=name.removesuffix("_ms"))
    ax.axhline(TARGET_P99_MS, color="#d62728", linestyle="--", label="p99 target 10 ms")
    ax.axvline(TARGET_RATE, color="#999999", linestyle=":", label="20,000 events/s")
    ax.set_yscale("log")
    ax.set_xlabel("input events/s (achieved)")
    ax.set_ylabel("tick → intent latency, ms (log)")
    ax.set_title("Kafka end to end: produce → quote flow → orders.intents consumer")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    print(f"loading {len(DATA)} recordings", file=sys.stderr)
    events = list(Recordings(DATA).events())
    broker = _Broker()
    results = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for rate in args.rates:
                result = run_rate(broker.bootstrap, events, rate, args.seconds, args.warmup_s,
                                  Path(workdir))
                results.append(result)
                print(result, file=sys.stderr)
    finally:
        broker.stop()
    report = {"machine": machine(), "target": {"p99_ms": TARGET_P99_MS, "rate": TARGET_RATE},
              "results": results}
    write_json(args.out / "e2e_kafka.json", report)
    chart(results, args.chart)
    return report


if __name__ == "__main__":
    main()
