"""What the system is doing now, derived from the stored risk events and control commands.

Pure functions of rows (dicts as `connectors.timescale.queries` returns them), so the
derivations are the ones the risk engine and the quote flow apply to the same commands:
- limits: the configured limits with every stored `set_limits` applied in order, skipping
  the ones the engine refuses (it rejects them whole and changes nothing);
- strategy: what the quote flow acknowledged (the control state in its latest stored
  `ControlAck`, `models.flow_control`), else the configuration; the target's latest stored
  `set_params` is shown pending until the flow answers it, or refused with the reason;
- trading state: per scope, the last state change the risk engine published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from models.flow_control import STRATEGY_PARAM, FlowControl, StrategyChoice
from models.risk import LimitsError, RiskLimits
from models.risk.state import GLOBAL, scope_of
from models.strategies import STRATEGIES, strategy_params

Row = Mapping[str, Any]
QUOTE_PROCESS = "quote"  # the process that acknowledges strategy commands


def applied_limits(configured: RiskLimits, set_limits: Iterable[Row]) -> RiskLimits:
    limits = configured
    for command in set_limits:
        try:
            limits = limits.updated(command["target"], command["params"])
        except LimitsError:
            continue
    return limits


def limits_view(limits: RiskLimits) -> dict[str, Any]:
    account = {
        f.name: _text(getattr(limits, f.name))
        for f in dataclasses.fields(limits)
        if f.init and f.name not in ("defaults", "overrides")
    }
    return {
        "account": account,
        "defaults": {k: _text(v) for k, v in dataclasses.asdict(limits.defaults).items()},
        "instruments": {
            key: {k: _text(v) for k, v in changes.items()}
            for key, changes in limits.overrides.items()
        },
    }


def command_params(changes: Mapping[str, Any]) -> dict[str, str]:
    """Validated values as a command's params, which are strings: floats by their repr."""
    return {key: _text(value) for key, value in changes.items()}


def current_strategy(
    target: str, configured: str, configured_params: Mapping[str, str],
    set_params: Iterable[Row], acks: Iterable[Row],
) -> dict[str, Any]:
    """`set_params` and `acks` (the quote flow's and others') oldest first."""
    acks = [ack for ack in acks if ack["process"] == QUOTE_PROCESS]
    control = FlowControl(configured=StrategyChoice(strategy=configured,
                                                    params=dict(configured_params)))
    acknowledged_at = None
    if acks:
        control = msgspec.convert(acks[-1]["state"], FlowControl)
        acknowledged_at = acks[-1]["ts"]
    choice = control.choice_for(target)
    view: dict[str, Any] = {
        "target": target, "strategy": choice.strategy, "params": dict(choice.params),
        "source": "config" if choice.command_id is None else "acknowledged",
        "command_id": choice.command_id, "issued_by": choice.issued_by,
        "paused": control.is_paused(target), "acknowledged_at": acknowledged_at,
        "pending": None, "refused": None,
    }
    latest = None
    for command in set_params:
        if command["target"] == target:
            latest = command
    if latest is None:
        return view
    # Applied once is applied: a later copy of the same command is refused as replayed.
    answers = sorted((ack for ack in acks if ack["command_id"] == latest["command_id"]),
                     key=lambda ack: ack["status"] == "applied")
    answer = answers[-1] if answers else None
    if answer is None:
        params = dict(latest["params"])
        view["pending"] = {"command_id": latest["command_id"], "issued_by": latest["issued_by"],
                           "ts": latest["ts"], "strategy": params.pop(STRATEGY_PARAM, None),
                           "params": params}
    elif answer["status"] != "applied":
        view["refused"] = {"command_id": latest["command_id"], "issued_by": latest["issued_by"],
                           "reason": answer["reason"]}
    return view


def strategy_catalogue() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "params": [
                {"name": p, "type": spec.type.__name__, "default": _text(spec.default),
                 "help": spec.help, "bounds": str(spec.bounds)}
                for p, spec in strategy_params(name).items()
            ],
        }
        for name in sorted(STRATEGIES)
    ]


def trading_status(states: Iterable[Row], commands: Iterable[Row]) -> list[dict[str, Any]]:
    """Every scope with a state change or a state command, `*` first; ACTIVE if none."""
    by_scope: dict[str, dict[str, Any]] = {}

    def entry(scope: str) -> dict[str, Any]:
        return by_scope.setdefault(scope, {
            "scope": scope, "state": "ACTIVE", "since": None, "reason_code": None,
            "detail": None, "last_command": None,
        })

    entry(GLOBAL)

    for row in states:
        entry(scope_of(row["venue"], row["symbol"])).update(
            state=row["state"], since=row["ts"], reason_code=row["reason_code"],
            detail=row["detail"],
        )
    for command in commands:  # oldest first: the last one per scope stays
        entry(command["target"])["last_command"] = {
            key: command[key] for key in ("command_id", "action", "issued_by", "ts")
        }
    return sorted(by_scope.values(), key=lambda s: (s["scope"] != GLOBAL, s["scope"]))


def _text(value: object) -> str | None:
    """Limits and parameters as text: exact Decimals, floats by their shortest repr."""
    if value is None:
        return None
    return repr(value) if isinstance(value, float) else str(value)
