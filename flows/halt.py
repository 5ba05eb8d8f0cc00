"""A flow's way to stop on a condition it knows, without a panic: record why, end the inputs.

An exception escaping a Bytewax step becomes a Rust panic (its message and a Python
traceback on stderr) and no clean end for the sink. A step that finds a known fatal
condition (a lockstep replay's marks for another market) instead calls `halt.request(why)`
and emits nothing more; the flow's sources, given `halt` as their `halted` callable, end
their partitions, so Bytewax finishes as at the end of the input and the sink keeps what
was emitted before. The caller then reads `halt.reason` (`flows.processes.run_flow` raises
`FlowHalted`, which the CLI prints as one line).

The signal is process-local: in a cluster of processes the others learn of it only by
what this one stops sending. A step's state holding it is snapshotted for recovery; the
snapshot holds only its name, and a state resumed from one answers to this run's signal
of that name (the registry below), never to a stale copy.

>>> halt = Halt.new("doctest")
>>> halt(), halt.reason
(False, None)
>>> halt.request("first"); halt.request("second")
>>> halt(), halt.reason
(True, 'first')
>>> import pickle
>>> pickle.loads(pickle.dumps(halt)) is halt
True
"""

from __future__ import annotations

import threading

_RUNS: dict[str, Halt] = {}  # name → this process's current run's signal
_LOCK = threading.Lock()


class FlowHalted(RuntimeError):
    """A flow stopped itself on a known condition (`Halt.request`); the message says which."""


class Halt:
    """The halt signal of one run of a flow; true (as a callable) once requested."""

    __slots__ = ("_reason", "name")

    def __init__(self, name: str):
        self.name = name
        self._reason: str | None = None

    @classmethod
    def new(cls, name: str) -> Halt:
        """A fresh signal for a new run of the flow `name` (replaces the previous run's)."""
        halt = cls(name)
        with _LOCK:
            _RUNS[name] = halt
        return halt

    def request(self, reason: str) -> None:
        """Stop the flow; the first reason wins (one condition, told once)."""
        with _LOCK:
            if self._reason is None:
                self._reason = reason

    @property
    def reason(self) -> str | None:
        return self._reason

    def __call__(self) -> bool:
        return self._reason is not None

    def __reduce__(self) -> tuple:
        return (_current, (self.name,))


def _current(name: str) -> Halt:
    with _LOCK:
        halt = _RUNS.get(name)
    return halt if halt is not None else Halt.new(name)
