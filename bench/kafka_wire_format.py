"""Wire-format measurement behind docs/kafka.md: encode+decode speed and size on real events.

Replays a recording into typed events, then for each candidate format encodes every event
to bytes and decodes the bytes back to the typed event (what a producer and a consumer pay
per message). Sizes are raw, and zlib level 1 over 500-message batches as a stand-in for
the producer's batch compression.

    .venv/bin/python -m bench.kafka_wire_format [RECORDING]
"""

from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Callable

import msgspec
import orjson

from connectors.replay.recordings import Recordings
from models import events as wire
from models.events import AnyEvent, DeadLetter, levels_to_builtins

DEFAULT_RECORDING = "../shared/data/binance/usdm/btcusdt_20240808.gz"
_BATCH = 500


def _formats() -> dict[str, tuple[Callable, Callable]]:
    # JSON is what the producers write (`models.events.encode`); the Binance decoder's depth
    # levels (`Levels`) need the events module's hook in any other encoder.
    json_dec = msgspec.json.Decoder(AnyEvent)
    pack_enc = msgspec.msgpack.Encoder(decimal_format="string", enc_hook=levels_to_builtins)
    pack_dec = msgspec.msgpack.Decoder(AnyEvent)

    def orjson_encode(event):
        return orjson.dumps(wire.to_builtins(event))

    def orjson_decode(data):
        return msgspec.convert(orjson.loads(data), AnyEvent, strict=False)

    return {
        "msgspec JSON": (wire.encode, json_dec.decode),
        "msgspec MessagePack": (pack_enc.encode, pack_dec.decode),
        "orjson (+ msgspec.convert)": (orjson_encode, orjson_decode),
    }


def _best_of(repeats: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def measure(path: str, repeats: int = 3) -> list[dict]:
    events = [e for e in Recordings([path]).events() if type(e) is not DeadLetter]
    rows = []
    for name, (encode, decode) in _formats().items():
        payloads = [encode(e) for e in events]
        assert [decode(p) for p in payloads[:1000]] == events[:1000], name
        encode_s = _best_of(repeats, lambda enc=encode: [enc(e) for e in events])
        decode_s = _best_of(repeats, lambda dec=decode, p=payloads: [dec(x) for x in p])
        raw = sum(map(len, payloads))
        compressed = sum(
            len(zlib.compress(b"".join(payloads[i : i + _BATCH]), 1))
            for i in range(0, len(payloads), _BATCH)
        )
        rows.append({
            "format": name, "events": len(events),
            "encode_us": encode_s / len(events) * 1e6, "decode_us": decode_s / len(events) * 1e6,
            "bytes_per_event": raw / len(events), "compressed_per_event": compressed / len(events),
        })
    return rows


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_RECORDING
    rows = measure(path)
    print(f"{rows[0]['events']} events from {path}")
    print("| format | encode µs/event | decode µs/event | bytes/event | zlib-1 batch bytes/event |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['format']} | {r['encode_us']:.2f} | {r['decode_us']:.2f} | "
            f"{r['bytes_per_event']:.0f} | {r['compressed_per_event']:.0f} |"
        )


if __name__ == "__main__":
    main()
