"""In-memory Bytewax source and sink: the embedded default's and the tests' edges.

The same flows run on Kafka in production; here the source is any iterable of events
(a replayed recording, the simulated market) and the sink hands batches to a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition


class _ChunkPartition(StatelessSourcePartition[list]):
    def __init__(self, events: Iterator, chunk_size: int, on_chunk: Callable[[list], None] | None):
        self._events = events
        self._chunk_size = chunk_size
        self._on_chunk = on_chunk

    def next_batch(self) -> list[list]:
        chunk = list(islice(self._events, self._chunk_size))
        if not chunk:
            raise StopIteration
        if self._on_chunk is not None:
            self._on_chunk(chunk)
        return [chunk]


class ChunkedSource(DynamicSource[list]):
    """Emits the iterable as lists of up to `chunk_size` events, in order, on worker 0.

    Chunks amortise Bytewax's per-item cost over many events; `chunk_size=1` gives
    event-at-a-time latency. `on_chunk` sees each chunk as it leaves (progress bars).
    """

    def __init__(
        self,
        events: Iterable,
        chunk_size: int = 512,
        on_chunk: Callable[[list], None] | None = None,
    ):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self._events = events
        self._chunk_size = chunk_size
        self._on_chunk = on_chunk

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ChunkPartition:
        # One ordered stream: every other worker reads nothing, keyed steps still spread the work.
        events = iter(self._events) if worker_index == 0 else iter(())
        return _ChunkPartition(events, self._chunk_size, self._on_chunk)


class _CallbackPartition(StatelessSinkPartition[Any]):
    def __init__(self, callback: Callable[[list], None]):
        self._callback = callback

    def write_batch(self, items: list) -> None:
        self._callback(items)


class CallbackSink(DynamicSink[Any]):
    """Hands every batch the flow writes to `callback` (in the worker's thread)."""

    def __init__(self, callback: Callable[[list], None]):
        self._callback = callback

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CallbackPartition:
        return _CallbackPartition(self._callback)
