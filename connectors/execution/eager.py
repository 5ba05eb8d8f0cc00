"""Start a coroutine at once; pay for asyncio's machinery only if it has to wait.

The executor's requests often answer without waiting (the paper venue answers at once and
its rate limiter delays on a simulated clock), yet each one used to get a `Task` from
`gather` and a timer from `asyncio.timeout`, several times the cost of the request itself.
`start` runs a coroutine up to its first wait, as the task's first step would have, and
hands back either its result or a `Waiting` awaitable that carries on from where it stopped:
awaited in place, it forwards every yield, send and throw (`yield from`), so a caller that
goes on waiting behaves as if it had awaited the coroutine from the start.

`gather` is `asyncio.gather` for the executor's requests, with each coroutine started at
once in list order instead of on the loop's next turn: what runs without waiting never
becomes a task, and the rest become tasks gathered as before. Python 3.12's eager tasks do
the same; pyproject pins 3.11.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType
from typing import Any


class Waiting:
    """A started coroutine, suspended on `waiting_on` (what it yielded to the event loop)."""

    __slots__ = ("_coroutine", "_waiting_on")

    def __init__(self, coroutine: Coroutine, waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, value = self._coroutine, self._waiting_on
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # thrown in: the coroutine's to handle
                try:
                    value = coroutine.throw(error)
                except StopIteration as finished:
                    return finished.value
            else:
                try:
                    value = coroutine.send(sent)
                except StopIteration as finished:
                    return finished.value


def start(coroutine: Awaitable[Any]) -> tuple[bool, Any]:
    """`(True, result)` when the coroutine finished without waiting, else `(False, Waiting)`;
    raises what the coroutine raised before its first wait. Any other awaitable (a future)
    is returned as it is, to be awaited."""
    if type(coroutine) is not CoroutineType:
        return False, coroutine
    try:
        waiting_on = coroutine.send(None)
    except StopIteration as finished:
        return True, finished.value
    return False, Waiting(coroutine, waiting_on)


async def _carry_on(waiting: Waiting) -> Any:
    """A new task's first step comes a turn after the coroutine's: a bare `yield` (which
    asks for exactly that turn) is answered at once instead of costing one more."""
    if waiting._waiting_on is None:
        finished, rest = start(waiting._coroutine)
        if finished:
            return rest
        waiting = rest
    return await waiting


async def gather(awaitables: list[Awaitable[Any]]) -> None:
    """Await every one (results dropped); the first error is raised, after each coroutine
    has had its start, and what still waits keeps running, as with `asyncio.gather`."""
    waiting: list[Awaitable[Any]] = []
    error: BaseException | None = None
    for awaitable in awaitables:
        if type(awaitable) is not CoroutineType:
            waiting.append(awaitable)  # a task or future: already scheduled
            continue
        try:
            finished, rest = start(awaitable)
        except (Exception, asyncio.CancelledError) as raised:
            if error is None:
                error = raised
            continue
        if not finished:
            waiting.append(asyncio.ensure_future(_carry_on(rest)))
    if error is not None:
        if waiting:  # they run on; their errors are taken, as `gather` takes them
            asyncio.gather(*waiting, return_exceptions=True)
        raise error
    if waiting:
        await asyncio.gather(*waiting)
