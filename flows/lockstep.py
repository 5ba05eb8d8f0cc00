"""The quote flow's lockstep sessions (`models.lockstep`), stopping the flow on a mismatch.

A mark of another market event than the session's next (`LockstepError`: the executor is
replaying another market) is fatal to the replay, but raised in a Bytewax step it would be
a Rust panic and a traceback. Here it halts the run instead (`flows.halt`): no session
emits anything more (what went out before stays), and the sources given the same `Halt`
end their partitions, so the flow finishes cleanly and its caller reports the reason. A
session releases at most one event per input event (one arrival pairs at most one mark
with one market event), so a mismatch drops no output of an event matched before it.
"""

from __future__ import annotations

from typing import Any

from flows.halt import Halt
from models.events import Event
from models.lockstep import LockstepError, LockstepSession, LockstepSessions


class HaltingLockstepSession:
    """A `LockstepSession` that requests `halt` on a mismatch and is silent once it is set
    (by this instrument or any other of the run)."""

    __slots__ = ("halt", "session")

    def __init__(self, session: LockstepSession, halt: Halt):
        self.session = session
        self.halt = halt

    def on_event(self, event: Event) -> list[Event]:
        if self.halt():
            return []
        try:
            return self.session.on_event(event)
        except LockstepError as error:
            self.halt.request(str(error))
            return []

    def close(self) -> list[Event]:
        return [] if self.halt() else self.session.close()


class HaltingLockstepSessions:
    """key → `HaltingLockstepSession` around `sessions(key)`, as `LockstepSessions`."""

    def __init__(self, sessions: Any, halt: Halt):
        self._lockstep = LockstepSessions(sessions)
        self._halt = halt

    def __call__(self, key: str) -> HaltingLockstepSession:
        return HaltingLockstepSession(self._lockstep(key), self._halt)
