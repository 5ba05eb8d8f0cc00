"""What the system is doing now, derived from the stored risk events and control commands.

Pure functions of rows (dicts as `connectors.timescale.queries` returns them), so the
derivations are the ones the risk engine and the quote flow apply to the same commands:
- limits: the configured limits with every stored `set_limits` applied in order, skipping
  the ones the engine refuses (it rejects them whole and changes nothing);
- strategy: per target, the last stored `set_params` (which names the strategy and all its
  parameters), else the configuration;
- trading state: per scope, the last state change the risk engine published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from models.risk import LimitsError, RiskLimits
from models.risk.state import GLOBAL, scope_of
from models.strategies import STRATEGIES, strategy_params

Row = Mapping[str, Any]
STRATEGY_PARAM = "strategy"  # the key of a set_params command that names the strategy


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
    target: str, configured: str, configured_params: Mapping[str, str], set_params: Iterable[Row]
) -> dict[str, Any]:
    latest = None
    for command in set_params:
        if command["target"] == target:
            latest = command
    if latest is None:
        return {"target": target, "strategy": configured, "params": dict(configured_params),
                "source": "config"}
    params = dict(latest["params"])
    return {
        "target": target,
        "strategy": params.pop(STRATEGY_PARAM),
        "params": params,
        "source": "command",
        "command_id": latest["command_id"],
        "issued_by": latest["issued_by"],
    }


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
