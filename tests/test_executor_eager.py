"""Starting the executor's requests at once (`connectors.execution.eager`) changes nothing
but the cost: the same steps in the same order as `asyncio.gather`, the same errors, and a
request that has to wait still waits, times out and can be cancelled."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from connectors.execution import eager
from connectors.execution.retry import RetryPolicy, with_retries


async def _request(trace: list, name: str, wait: str, fail: bool) -> str:
    trace.append(f"{name} starts")
    if wait == "turn":
        await asyncio.sleep(0)  # a bare yield: one turn of the loop
    elif wait == "time":
        await asyncio.sleep(0.002)
    trace.append(f"{name} answered")
    if fail:
        raise ValueError(name)
    return name


async def _gathered(gather, trace: list, waits: tuple[str, ...], failing: set[int]) -> None:
    """The executor's shape: tasks started before a `sleep(0)`, then a gather of those and
    of new coroutines; a ticker shows where each step falls among the loop's turns."""

    def tick(left: int) -> None:
        trace.append(f"turn {left}")
        if left:
            asyncio.get_running_loop().call_soon(tick, left - 1)

    asyncio.get_running_loop().call_soon(tick, 6)
    early = asyncio.ensure_future(_request(trace, "early", "none", False))
    await asyncio.sleep(0)
    requests = [_request(trace, f"r{i}", wait, i in failing) for i, wait in enumerate(waits)]
    try:
        await gather([early, *requests])
    except ValueError as error:
        trace.append(f"raised {error}")
    await asyncio.sleep(0.005)  # what still waited after an error finishes


async def _asyncio_gather(awaitables: list) -> None:
    await asyncio.gather(*awaitables)


@pytest.mark.parametrize(
    ("waits", "failing"),
    [
        (("none", "none"), set()),
        (("none", "none", "none"), {1}),
        (("turn", "none"), set()),
        (("none", "time", "turn"), set()),
        (("time", "none"), {1}),
    ],
)
def test_requests_run_their_steps_as_gather_runs_them(waits, failing):
    traces = []
    for gather in (eager.gather, _asyncio_gather):
        trace: list = []
        asyncio.run(_gathered(gather, trace, waits, failing))
        traces.append([step for step in trace if not step.startswith("turn")])
    assert traces[0] == traces[1]
    assert len(traces[0]) >= 2 * len(waits) + 2


def test_a_request_that_answers_at_once_sets_no_timer():
    async def answer() -> str:
        return "ok"

    async def run() -> tuple[str, int]:
        result = await with_retries(answer, RetryPolicy())
        return result, len(asyncio.get_running_loop()._scheduled)

    assert asyncio.run(run()) == ("ok", 0)


def test_a_request_that_waits_gets_its_deadline_from_its_start():
    async def slow() -> str:
        await asyncio.sleep(0.05)
        return "late"

    with pytest.raises(ccxt.RequestTimeout):
        asyncio.run(with_retries(slow, RetryPolicy(attempts=1, timeout_s=0.02)))
    assert asyncio.run(with_retries(slow, RetryPolicy(attempts=1, timeout_s=1.0))) == "late"


def test_a_network_error_before_any_wait_is_retried():
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ccxt.NetworkError("dropped")
        return "ok"

    async def no_sleep(_: float) -> None:
        return None

    assert asyncio.run(with_retries(flaky, RetryPolicy(), sleep=no_sleep)) == "ok"
    assert len(calls) == 2


def test_cancelling_a_started_request_reaches_the_request():
    seen = []

    async def hang() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def run() -> None:
        task = asyncio.ensure_future(eager.gather([hang()]))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert seen == ["cancelled"]
