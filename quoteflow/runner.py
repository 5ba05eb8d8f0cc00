"""Runs the quote flow in-process on in-memory connectors against the paper venue."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bytewax.testing import run_main

from connectors.memory import CallbackSink, ChunkedSource
from connectors.replay.recordings import RecordingError
from flows.quote import build_quote_flow
from quoteflow.results import RunResults, summarize
from quoteflow.sessions import SessionRegistry, TradingOptions


@dataclass
class RunOutcome:
    summary: dict
    results: RunResults
    registry: SessionRegistry


def run_paper_trading(
    events: Iterable,
    options: TradingOptions,
    *,
    chunk_size: int = 512,
    on_chunk: Callable[[list], None] | None = None,
    on_output: Callable[[list], None] | None = None,
) -> RunOutcome:
    """`on_chunk` sees each input chunk as it leaves the source, `on_output` each batch the
    flow writes, before it is collected (benchmarks time the path between the two)."""
    registry = SessionRegistry(options)
    results = RunResults()
    counted = 0

    def count(chunk: list) -> None:
        nonlocal counted
        counted += len(chunk)
        if on_chunk is not None:
            on_chunk(chunk)

    def collect(batch: list) -> None:
        on_output(batch)
        results.collect(batch)

    flow = build_quote_flow(
        ChunkedSource(events, chunk_size=chunk_size, on_chunk=count),
        CallbackSink(results.collect if on_output is None else collect),
        registry,
    )
    started = time.perf_counter()
    run_main(flow)
    wall = time.perf_counter() - started
    return RunOutcome(summarize(registry, results, counted, wall), results, registry)


def require_market_events(outcome: RunOutcome) -> RunOutcome:
    """A replay that yielded no market event at all (files empty, unreadable or of another
    format: each only a dead letter) is bad input, not a backtest with zero fills: raise
    `RecordingError` naming the first dead letter's file and reason."""
    dead = outcome.results.dead_letters
    if outcome.summary["events"] > len(dead):
        return outcome
    why = f"{dead[0].source}: {dead[0].reason}" if dead else "the recordings are empty"
    raise RecordingError(f"no market events to trade: {why}")
