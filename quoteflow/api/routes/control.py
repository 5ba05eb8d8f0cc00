"""Steering: trading status, pause/resume/reduce/kill, risk limits, strategy parameters.

Every change is a `ControlCommand` on the `control` topic; the risk engine and the quote
flow act on it, and the persist flow stores it. Reads derive the current state from what
is stored (`quoteflow.api.state`): the strategy is what the quote flow acknowledged on
`control.acks`, with a change it has not answered yet shown as pending.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from connectors.keycloak import Principal
from connectors.timescale import queries
from models.flow_control import FLOW_ACTIONS
from models.risk import LimitsError, RiskLimits, parse_limits
from models.strategies import build_strategy
from quoteflow.api import state
from quoteflow.api.auth import caller
from quoteflow.api.context import ApiContext, context
from quoteflow.api.routes import API_PREFIX
from quoteflow.api.schemas import (
    TARGET_PATTERN,
    CommandAction,
    CommandOut,
    CommandRequest,
    Limits,
    LimitsUpdate,
    Status,
    StrategyCurrent,
    StrategyInfo,
    StrategyUpdate,
)
from quoteflow.suggestion_store import NoSuggestion, read_latest

router = APIRouter(prefix=API_PREFIX)
Context = Annotated[ApiContext, Depends(context)]
Viewer = Annotated[Principal, Depends(caller("viewer"))]
Trader = Annotated[Principal, Depends(caller("trader"))]
Admin = Annotated[Principal, Depends(caller("admin"))]
_STATE_ACTIONS = ("pause", "resume", "reduce", "kill")


@router.get("/status", response_model=Status, tags=["control"])
def status(ctx: Context, _: Viewer) -> Status:
    with ctx.services.database.connection() as conn:
        states = queries.trading_states(conn)
        commands = queries.control_commands(conn, _STATE_ACTIONS)
    return Status(scopes=state.trading_status(states, commands))


@router.post("/control/{action}", response_model=CommandOut, status_code=202,
             tags=["control"])
def command(action: CommandAction, body: CommandRequest, ctx: Context, who: Trader) -> CommandOut:
    """Pause (no new orders), reduce (only orders that reduce exposure), kill (cancel
    everything, accept nothing) or resume a scope."""
    params = {"reason": body.reason} if body.reason else {}
    return ctx.issue(who, action, body.target, params)


@router.get("/limits", response_model=Limits, tags=["risk"])
def limits(ctx: Context, _: Viewer) -> Limits:
    return Limits(**state.limits_view(_current_limits(ctx)))


@router.put("/limits", response_model=CommandOut, status_code=202, tags=["risk"])
def set_limits(body: LimitsUpdate, ctx: Context, who: Admin) -> CommandOut:
    try:
        # Whether a change is valid does not depend on the limits it changes.
        parse_limits(ctx.services.config.risk).updated(body.target, body.limits)
    except LimitsError as error:
        ctx.audit.record(who, "rejected", {"action": "set_limits", "reason": str(error)})
        raise HTTPException(422, f"invalid limits: {error}") from None
    return ctx.issue(who, "set_limits", body.target, state.command_params(body.limits))


@router.get("/strategies", response_model=list[StrategyInfo], tags=["strategies"])
def strategies(_: Viewer) -> list[StrategyInfo]:
    return [StrategyInfo(**entry) for entry in state.strategy_catalogue()]


@router.get("/strategies/current", response_model=StrategyCurrent, tags=["strategies"])
def current_strategy(
    ctx: Context, _: Viewer,
    target: Annotated[str, Query(pattern=TARGET_PATTERN, max_length=200)] = "*",
) -> StrategyCurrent:
    """What the quote flow acknowledged, and the target's latest change while it is pending
    (published, not answered yet) or if it was refused."""
    quote = ctx.services.config.quote
    with ctx.services.database.connection() as conn:
        commands = queries.control_commands(conn, ("set_params",))
        acks = queries.control_acks(conn, FLOW_ACTIONS)
    return StrategyCurrent(**state.current_strategy(target, quote.strategy, quote.params,
                                                    commands, acks))


@router.put("/strategies/current", response_model=CommandOut, status_code=202,
            tags=["strategies"])
def set_strategy(body: StrategyUpdate, ctx: Context, who: Trader) -> CommandOut:
    """Switch the target to `strategy` with `params` (the others take their defaults)."""
    try:
        build_strategy(body.strategy, body.params)
    except ValueError as error:
        ctx.audit.record(who, "rejected", {"action": "set_params", "reason": str(error)})
        raise HTTPException(422, f"invalid strategy parameters: {error}") from None
    params = {state.STRATEGY_PARAM: body.strategy, **state.command_params(body.params)}
    return ctx.issue(who, "set_params", body.target, params)


@router.get("/strategies/suggestion", tags=["strategies"])
def strategy_suggestion(_: Trader) -> dict:
    """The latest `quoteflow suggest` result: its `strategy` and `params` are a body for
    `PUT /strategies/current`, beside the out-of-sample evidence for them."""
    try:
        return read_latest()
    except NoSuggestion as error:
        raise HTTPException(404, str(error)) from None


def _current_limits(ctx: ApiContext) -> RiskLimits:
    configured = parse_limits(ctx.services.config.risk)
    with ctx.services.database.connection() as conn:
        commands = queries.control_commands(conn, ("set_limits",))
    return state.applied_limits(configured, commands)
