"""Runs the paper trader's executor calls on a private event loop, without its idle turns.

The executor is asyncio code, but beside the paper venue nothing in it waits: the venue
answers at once and the simulated rate limiter delays requests on the market's clock. Each
call still had to go through `run_until_complete`, which starts and stops the loop and makes
a `select()` system call and a pass over the timers on every turn: in a backtest that was
most of the executor's time. `InlineLoop.run` runs the loop's ready callbacks itself, in the
batches and order `run_until_complete` runs them (down to the one batch it runs after the
task is done), and hands the task to `run_until_complete` as soon as anything would have
to wait for time to pass (a retry's sleep, a timer), so waiting keeps its exact meaning.

It reads the internals of CPython 3.11's `BaseEventLoop` (`_ready`, `_scheduled`), which
pyproject pins; `tests/test_fast_paths.py` checks it against `run_until_complete`.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class InlineLoop:
    """`run(coroutine)`: its result, on a private event loop of the calling thread's own."""

    __slots__ = ("_threads",)

    def __init__(self) -> None:
        self._threads = threading.local()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop = getattr(self._threads, "loop", None)
        if loop is None:
            loop = self._threads.loop = asyncio.new_event_loop()
        if asyncio.events._get_running_loop() is not None:
            coroutine.close()
            raise RuntimeError("Cannot run the event loop while another loop is running")
        task = loop.create_task(coroutine)
        ready, scheduled = loop._ready, loop._scheduled
        finishing = False
        asyncio.events._set_running_loop(loop)
        try:
            while ready:
                if scheduled:
                    _drop_cancelled_timers(loop)
                    if scheduled:
                        break  # something waits for a time: the loop proper handles it
                for _ in range(len(ready)):
                    handle = ready.popleft()
                    if not handle._cancelled:
                        handle._run()
                if task.done():
                    if finishing:
                        break
                    # `run_until_complete` stops one turn later (its stop callback's turn).
                    finishing = True
        finally:
            asyncio.events._set_running_loop(None)
        if not task.done():
            loop.run_until_complete(task)
        if scheduled:
            _drop_cancelled_timers(loop)
        return task.result()


def _drop_cancelled_timers(loop: asyncio.BaseEventLoop) -> None:
    """What each turn of the loop does first: forget timers cancelled at the head (each
    request's timeout is cancelled when its answer comes)."""
    scheduled = loop._scheduled
    while scheduled and scheduled[0]._cancelled:
        loop._timer_cancelled_count -= 1
        handle = heapq.heappop(scheduled)
        handle._scheduled = False
