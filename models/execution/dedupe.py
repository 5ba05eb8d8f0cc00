"""A bounded memory of keys already seen, for de-duplicating replayed or repeated input."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable


class RecentKeys:
    """Remembers the last `capacity` keys; `add` says whether a key is new.

    Duplicates arrive close together (a redelivered message, a retried response), so a bounded
    window is enough and keeps a long-running process from growing without end.
    """

    __slots__ = ("_capacity", "_keys", "_order")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, not {capacity}")
        self._capacity = capacity
        self._keys: set[Hashable] = set()
        self._order: deque[Hashable] = deque()

    def add(self, key: Hashable) -> bool:
        keys = self._keys
        if key in keys:
            return False
        keys.add(key)
        order = self._order
        order.append(key)
        if len(order) > self._capacity:
            keys.discard(order.popleft())
        return True

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
