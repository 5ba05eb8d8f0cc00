"""Trading states and the scopes they apply to.

A state is held per scope: `*` (everything), a venue (`binance`) or an instrument
(`binance:BTC/USDT`). An instrument trades under the most restrictive of its three scopes,
so a venue-wide pause needs no list of the venue's instruments.

Limits only ever make a scope more restrictive (`escalate`); the only way back is an
explicit `resume`, which clears the scope and every narrower scope under it.
"""

from __future__ import annotations

from enum import StrEnum

GLOBAL = "*"


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"  # every order the pre-trade checks pass
    REDUCING = "REDUCING"  # only orders that reduce exposure
    HALTED = "HALTED"  # kill switch: cancel everything, accept nothing


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def scope_of(venue: str | None, symbol: str | None) -> str:
    if venue is None:
        return GLOBAL
    return venue if symbol is None else f"{venue}:{symbol}"


def split_scope(scope: str) -> tuple[str | None, str | None]:
    """(venue, symbol) of a scope; symbols may contain ':' themselves (`BTC/USDT:USDT`)."""
    if scope == GLOBAL:
        return None, None
    venue, _, symbol = scope.partition(":")
    return venue, symbol or None


class TradingStates:
    __slots__ = ("_states",)

    def __init__(self) -> None:
        # Only scopes that are not ACTIVE are stored: the common case is an empty dict.
        self._states: dict[str, TradingState] = {}

    def of_scope(self, scope: str) -> TradingState:
        return self._states.get(scope, TradingState.ACTIVE)

    def effective(self, venue: str, instrument_key: str) -> TradingState:
        states = self._states
        if not states:
            return TradingState.ACTIVE
        worst = TradingState.ACTIVE
        for scope in (GLOBAL, venue, instrument_key):
            state = states.get(scope)
            if state is not None and _SEVERITY[state] > _SEVERITY[worst]:
                worst = state
        return worst

    def escalate(self, scope: str, state: TradingState) -> bool:
        """Make `scope` at least as restrictive as `state`; True when that changed it."""
        if _SEVERITY[state] <= _SEVERITY[self.of_scope(scope)]:
            return False
        self._states[scope] = state
        return True

    def resume(self, scope: str) -> list[tuple[str, TradingState]]:
        """Back to ACTIVE for `scope` and every scope under it; the scopes that changed."""
        resumed = [(s, state) for s, state in self._states.items() if _covers(scope, s)]
        for s, _ in resumed:
            del self._states[s]
        return resumed

    def scopes(self) -> dict[str, TradingState]:
        """Every scope that is not ACTIVE."""
        return dict(self._states)


def _covers(scope: str, other: str) -> bool:
    """Whether `other` is `scope` or under it (a venue covers its instruments)."""
    if scope == GLOBAL or other == scope:
        return True
    return ":" not in scope and other.startswith(f"{scope}:")
