"""What operators told the quote flow, as applied: strategy and parameters, pause and resume.

The control API publishes signed `ControlCommand`s; the quote flow acts on three of them:
- `set_params`: the target quotes `params["strategy"]` (the one it runs, if not named) with
  the other params, validated against each parameter's declared type and range
  (`models.strategies.build_strategy`, as the API validates before publishing);
- `pause` and `resume`: a paused target sends an empty desired state (the executor then
  cancels its quotes) and keeps its book and estimators up to date, so it quotes again on
  resume at once.
Targets are scopes: `*`, a venue, or `venue:symbol`; the most specific strategy choice
wins, and an instrument is paused while any of its scopes is (resuming `*` leaves an
instrument paused on its own paused).

`CommandGate` is the one place a command enters: it verifies the signature, freshness and
nonce (`models.command_signing.CommandVerifier`, the executor's check), applies the
command to the `FlowControl` state and answers each command with a `ControlAck` (applied,
or refused with the reason) carrying the resulting state, plus one `InstrumentControl`
per instrument, which the instrument's `QuoteSession` applies at its next item. A refused
command changes nothing. Pure: the clock is given, keys come in as objects. The gate is
picklable (Bytewax snapshots it), so the nonces seen within the freshness window survive a
restart with the state they produced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from models.command_signing import CommandVerifier
from models.events import ControlAck, ControlCommand
from models.strategies import build_strategy

FLOW_ACTIONS = frozenset({"set_params", "pause", "resume"})
STRATEGY_PARAM = "strategy"  # the key of a set_params param that names the strategy
GLOBAL = "*"
APPLIED = "applied"
REFUSED = "refused"
BAD_PARAMS = "bad_params"
_MAX_REASON = 300


class StrategyChoice(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy with its parameters, and the command that chose it (None: configured)."""

    strategy: str
    params: dict[str, str] = {}
    command_id: str | None = None
    issued_by: str | None = None

    def same_quoting(self, other: StrategyChoice) -> bool:
        return self.strategy == other.strategy and self.params == other.params


class CommandRefused(ValueError):
    """A command that cannot be applied; `reason` says why (`models.command_signing` reasons,
    or `bad_params: ...`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _venue(key: str) -> str:
    return key.partition(":")[0]


class FlowControl(msgspec.Struct, frozen=True, kw_only=True):
    """The quote flow's control state; `version` counts the commands applied."""

    configured: StrategyChoice
    version: int = 0
    strategies: dict[str, StrategyChoice] = {}  # scope → the choice a command made
    paused: list[str] = []  # paused scopes, sorted

    def choice_for(self, key: str) -> StrategyChoice:
        """The strategy instrument `key` (`venue:symbol`, or any scope) quotes."""
        strategies = self.strategies
        for scope in (key, _venue(key), GLOBAL):
            choice = strategies.get(scope)
            if choice is not None:
                return choice
        return self.configured

    def is_paused(self, key: str) -> bool:
        paused = self.paused
        return bool(paused) and (key in paused or _venue(key) in paused or GLOBAL in paused)

    def after(self, command: ControlCommand) -> FlowControl:
        """The state once `command` (verified, one of `FLOW_ACTIONS`) is applied; raises
        `CommandRefused` for parameters outside their declared ranges."""
        target, version = command.target, self.version + 1
        if command.action == "set_params":
            params = dict(command.params)
            name = params.pop(STRATEGY_PARAM, None) or self.choice_for(target).strategy
            try:
                build_strategy(name, params)
            except ValueError as error:
                raise CommandRefused(f"{BAD_PARAMS}: {error}"[:_MAX_REASON]) from None
            choice = StrategyChoice(strategy=name, params=params,
                                    command_id=command.command_id, issued_by=command.issued_by)
            return msgspec.structs.replace(
                self, version=version, strategies={**self.strategies, target: choice}
            )
        paused = set(self.paused)
        if command.action == "pause":
            paused.add(target)
        else:
            paused.discard(target)
        return msgspec.structs.replace(self, version=version, paused=sorted(paused))


class InstrumentControl(msgspec.Struct, frozen=True):
    """The flow's control state, addressed to one instrument's state (never on Kafka)."""

    venue: str
    symbol: str
    control: FlowControl


class CommandGate:
    """Verifies, applies and acknowledges commands; `on_event(command)` returns the ack and
    one `InstrumentControl` per instrument in `instruments` (keys `venue:symbol`) when the
    state changed. Commands for other processes (`kill`, `reduce`, `set_limits`) are the
    executor's: they pass unanswered, and their nonces are not spent here."""

    def __init__(
        self,
        process: str,
        verifier: CommandVerifier,
        configured: StrategyChoice,
        instruments: Iterable[str],
        clock: Callable[[], int],
    ):
        self.process = process
        self.verifier = verifier
        self.control = FlowControl(configured=configured)
        self.instruments = tuple(instruments)
        self.clock = clock
        self.refused = 0

    def on_event(self, command: object) -> list[ControlAck | InstrumentControl]:
        if type(command) is not ControlCommand or command.action not in FLOW_ACTIONS:
            return []
        now = self.clock()
        try:
            reason = self.verifier.refusal(command, now)
            if reason is not None:
                raise CommandRefused(reason)
            self.control = self.control.after(command)
        except CommandRefused as refusal:
            self.refused += 1
            return [self._ack(command, now, REFUSED, refusal.reason)]
        out: list[ControlAck | InstrumentControl] = [self._ack(command, now, APPLIED, None)]
        for key in self.instruments:
            venue, _, symbol = key.partition(":")
            out.append(InstrumentControl(venue, symbol, self.control))
        return out

    def close(self) -> list:
        return []

    def _ack(
        self, command: ControlCommand, now: int, status: str, reason: str | None
    ) -> ControlAck:
        # A refused command is the sender's text: only bounded parts of it are repeated.
        return ControlAck(
            ts=now, process=self.process, command_id=command.command_id[:64],
            issued_by=command.issued_by[:200], action=command.action,
            target=command.target[:200], status=status, reason=reason,  # type: ignore[arg-type]
            state=msgspec.to_builtins(self.control),
        )


def control_of(ack: ControlAck) -> FlowControl:
    """The control state an ack reports (raises msgspec.ValidationError if it has none)."""
    return msgspec.convert(ack.state, FlowControl)
