"""Executor benchmarks: decision-to-request latency, and the order rate under a rate limit.

`python -m bench.executor [--data FILE] [--out DIR] [--img-dir DIR]`

1. Latency: the USD-M recording through the backtest's per-instrument state (the quote
   session, the executor and the paper venue: `connectors.paper.trading.PaperTrader`).
   For each intent that leads to a request, the time
   from the executor receiving the intent to the rate limiter releasing its first request
   (risk checks, the diff, client ids, the audit records written before the request) — with
   the audit file fsynced in batches, and fsynced at every record.
2. Rate: the same replay with the venue's budget cut to `--rate` units/s (bucket `--burst`)
   on the market clock: intents arrive faster than requests may leave, so the limiter is the
   bottleneck. Every grant is recorded (market time, when the request leaves); the figure is
   the largest cost granted in any sliding window, against what the bucket allows in it
   (`burst + rate · window`), and the sustained rate.
"""

from __future__ import annotations

import argparse
import bisect
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_DATA, ROOT, console, machine, write_json
from connectors.audit_store import AuditStore
from connectors.execution.rate_limiter import AsyncRateLimiter, SimulatedRateLimiter
from connectors.paper.trading import PaperSettings, PaperTrader
from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import instrument_for
from models.events import DeadLetter, OrderIntent
from models.execution.plan import RequestCosts
from models.latency import ConstantLatency
from models.quote_session import build_quote_session
from models.rate_limit import TokenBucket
from quoteflow.sessions import TradingOptions

KEY = "binanceusdm:BTC/USDT:USDT"
OPTIONS = TradingOptions(
    strategy="glft", paper=PaperSettings(latency=ConstantLatency.from_ms(3, 3, 2))
)
# Every change a cancel/replace: the most requests per intent the executor makes.
CANCEL_REPLACE = RequestCosts(amend=2.0)
WINDOWS_S = (0.1, 1.0, 5.0)


def _replay(data: Path, max_events: int | None, **trader) -> int:
    """The recording through a `PaperTrader` (after `max_events` it shuts down); the
    number of intents."""
    instrument = instrument_for(*KEY.split(":", 1))
    paper = PaperTrader(
        build_quote_session(instrument, OPTIONS.quoting()), instrument, OPTIONS.paper,
        costs=CANCEL_REPLACE, **trader,
    )
    intents = events = 0
    for event in Recordings([data]).events():
        if isinstance(event, DeadLetter):
            continue
        intents += sum(type(e) is OrderIntent for e in paper.on_event(event))
        events += 1
        if max_events is not None and events >= max_events:
            break
    paper.close()
    return events, intents


class _TimedVenue:
    """The venue, noting when each order request (create, cancel, amend) is issued."""

    def __init__(self, inner, issued: list[list[int]]) -> None:
        self._inner = inner
        self._issued = issued

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def _note(self) -> None:
        if self._issued:
            self._issued[-1].append((time.perf_counter_ns(), time.thread_time_ns()))

    async def create_order(self, order):
        self._note()
        return await self._inner.create_order(order)

    async def cancel_order(self, client_order_id, symbol):
        self._note()
        return await self._inner.cancel_order(client_order_id, symbol)

    async def amend_order(self, client_order_id, symbol, side, amount, price, trigger=None):
        self._note()
        return await self._inner.amend_order(
            client_order_id, symbol, side, amount, price, trigger
        )


def latency(data: Path, sync_every: int, max_events: int | None) -> dict:
    # Wall clock and this thread's CPU time: on a shared machine the wall clock also counts
    # the time other processes held the CPU; the CPU time is the executor's own work.
    received: list[tuple[int, int]] = []
    issued: list[list[tuple[int, int]]] = []  # per intent, when each request was issued

    def on_intent(_intent) -> None:
        received.append((time.perf_counter_ns(), time.thread_time_ns()))
        issued.append([])

    # A bucket that never makes anyone wait: the executor's own time is what is measured.
    def limiter(_clock) -> AsyncRateLimiter:
        return AsyncRateLimiter(TokenBucket(1e9, 1e9, time.monotonic_ns()))
    with tempfile.TemporaryDirectory() as tmp:
        store = AuditStore(Path(tmp) / "audit.jsonl", sync_every=sync_every)
        started = time.perf_counter()
        events, intents = _replay(
            data, max_events, limiter=limiter, audit=store, on_intent=on_intent,
            wrap_venue=lambda venue: _TimedVenue(venue, issued),
        )
        elapsed = time.perf_counter() - started
        store.close()
    # The shutdown's cancels come after the last intent and belong to none: dropped.
    issued[-1] = [t for t in issued[-1] if t[0] - received[-1][0] < 1e9]
    pairs = list(zip(received, issued, strict=True))
    first = np.array([(times[0][0] - got[0]) / 1e3 for got, times in pairs if times])
    every = np.array([(t[0] - got[0]) / 1e3 for got, times in pairs for t in times])
    cpu = np.array([(t[1] - got[1]) / 1e3 for got, times in pairs for t in times])
    return {
        "audit_sync_every": sync_every, "events": events, "intents": intents,
        "intents_with_requests": len(first), "requests": len(every),
        "seconds": round(elapsed, 2),
        "first_p50_us": _percentile(first, 50), "first_p99_us": _percentile(first, 99),
        "p50_us": _percentile(every, 50), "p99_us": _percentile(every, 99),
        "cpu_p50_us": _percentile(cpu, 50), "cpu_p99_us": _percentile(cpu, 99),
        "max_us": round(float(every.max()), 1), "latencies_us": every.tolist(),
    }


def _percentile(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def rate(data: Path, rate_per_s: float, burst: float, max_events: int) -> dict:
    grants: list[tuple[int, float]] = []

    def limiter(clock) -> SimulatedRateLimiter:
        return SimulatedRateLimiter(
            TokenBucket(rate_per_s, burst, 0), clock,
            on_grant=lambda now, cost: grants.append((now, cost)),
        )

    started = time.perf_counter()
    _replay(data, max_events, limiter=limiter)
    elapsed = time.perf_counter() - started
    times = np.array([t for t, _ in grants], dtype=np.int64)
    cumulative = np.concatenate([[0.0], np.cumsum([c for _, c in grants])])
    windows = {}
    for window_s in WINDOWS_S:
        width = int(window_s * 1e9)
        worst = 0.0
        for i, start in enumerate(times):
            # Every window starting at a grant holds the most it can: slide over the grants.
            j = bisect.bisect_right(times, start + width - 1)
            worst = max(worst, float(cumulative[j] - cumulative[i]))
        windows[f"{window_s:g}s"] = {"max_cost": worst, "allowed": burst + rate_per_s * window_s}
    span_s = (times[-1] - times[0]) / 1e9
    return {
        "rate_per_s": rate_per_s, "burst": burst, "requests": len(grants),
        "cost": float(cumulative[-1]), "seconds": round(elapsed, 2),
        "sustained_per_s": round(float(cumulative[-1] - burst) / span_s, 2),
        "windows": windows, "grant_times_s": ((times - times[0]) / 1e9).tolist(),
    }


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for run in result["latency"]:
        values = np.sort(np.array(run["latencies_us"]))
        fsync = "every record" if run["audit_sync_every"] == 1 else "on close"
        left.plot(values, np.linspace(0, 1, len(values)), label=f"audit fsync {fsync}")
    left.set_xscale("log")
    left.set_xlabel("intent received → request issued (µs)")
    left.set_ylabel("fraction of requests")
    left.set_title("Decision-to-request latency")
    left.legend()
    limited = result["rate"]
    times = np.array(limited["grant_times_s"])
    seconds = np.arange(0, times[-1] + 1)
    per_second = np.histogram(times, bins=np.append(seconds, seconds[-1] + 1))[0]
    right.step(seconds, per_second, where="post", label="requests granted per second")
    right.axhline(limited["rate_per_s"], color="red", linestyle="--", label="configured rate")
    right.set_xlabel("seconds")
    right.set_title("Order rate against the limit")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    parser.add_argument("--img-dir", type=Path)
    parser.add_argument("--rate", type=float, default=50.0, help="limit, units/s")
    parser.add_argument("--burst", type=float, default=5.0, help="bucket capacity")
    parser.add_argument("--rate-events", type=int, default=30_000)
    parser.add_argument("--fsync-events", type=int, default=30_000)
    args = parser.parse_args()
    out = console()
    result = {"machine": machine(), "latency": [], "rate": None}
    for sync_every, max_events in ((0, None), (1, args.fsync_events)):
        run = latency(args.data, sync_every, max_events)
        result["latency"].append(run)
        out.print(f"latency, audit sync_every={sync_every}: every request p50 {run['p50_us']} "
                  f"µs, p99 {run['p99_us']} µs ({run['requests']} requests); first request "
                  f"p50 {run['first_p50_us']} µs, p99 {run['first_p99_us']} µs; CPU p50 "
                  f"{run['cpu_p50_us']} µs, p99 {run['cpu_p99_us']} µs")
    result["rate"] = limited = rate(args.data, args.rate, args.burst, args.rate_events)
    out.print(f"rate: {limited['requests']} requests, sustained {limited['sustained_per_s']}/s "
              f"against {args.rate}/s; windows {limited['windows']}")
    write_json(args.out / "executor.json", result)
    chart(result, (args.img_dir or args.out) / "executor.png")


if __name__ == "__main__":
    main()
