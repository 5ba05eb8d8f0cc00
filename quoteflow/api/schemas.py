"""Request and response bodies (pydantic v2), which are also the OpenAPI schema.

Money and sizes are `Decimal` and go out as JSON strings, never floats. Key material comes
in as `SecretStr` (it never appears in a repr, a log line or a validation error) and never
goes out at all: responses describe keys by their masked api key.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr

# `*`, a venue, or `venue:symbol` (symbols may hold ':' themselves: `BTC/USDT:USDT`).
TARGET_PATTERN = r"^(\*|[A-Za-z0-9._-]+(:\S+)?)$"
Target = Field("*", pattern=TARGET_PATTERN, max_length=200,
               description="`*`, a venue (`binance`) or `venue:symbol`")
CommandAction = Literal["pause", "resume", "reduce", "kill"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests --------------------------------------------------------------------------------


class CommandRequest(Body):
    target: str = Target
    reason: str | None = Field(None, max_length=500)


class LimitsUpdate(Body):
    target: str = Target
    limits: dict[str, JsonValue] = Field(
        min_length=1, max_length=32,
        description="limit name → value (number, string, or 'off'), each within its declared "
        "range (docs/risk.md)",
    )


class StrategyUpdate(Body):
    """Values are checked against each parameter's declared type and bounds
    (`GET /strategies`) before anything is published."""

    target: str = Target
    strategy: str = Field(max_length=64)
    params: dict[str, str | int | float] = Field({}, max_length=32)


class KeyCreate(Body):
    exchange: str = Field(max_length=64, description="a ccxt exchange id")
    api_key: SecretStr
    secret: SecretStr
    password: SecretStr | None = None
    uid: SecretStr | None = None


# -- responses -------------------------------------------------------------------------------


class CommandOut(BaseModel):
    command_id: str
    action: str
    target: str
    params: dict[str, str]
    issued_by: str
    ts: int = Field(description="ns since the epoch")
    topic: str
    key: str


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check] | None = Field(
        None, description="each system's state and why; for admins only")


class CommandSummary(BaseModel):
    command_id: str
    action: str
    issued_by: str
    ts: datetime


class ScopeStatus(BaseModel):
    scope: str
    state: Literal["ACTIVE", "REDUCING", "HALTED"]
    since: datetime | None
    reason_code: str | None
    detail: str | None
    last_command: CommandSummary | None


class Status(BaseModel):
    scopes: list[ScopeStatus]


class ParamInfo(BaseModel):
    name: str
    type: str
    default: str
    help: str
    bounds: str = Field(description="the range a value must lie in, e.g. '> 0, <= 1e+06'")


class StrategyInfo(BaseModel):
    name: str
    params: list[ParamInfo]


class PendingCommand(BaseModel):
    command_id: str
    issued_by: str
    ts: datetime
    strategy: str | None = Field(None, description="None: the one the target runs")
    params: dict[str, str]


class RefusedCommand(BaseModel):
    command_id: str
    issued_by: str
    reason: str | None


class StrategyCurrent(BaseModel):
    """What the quote flow acknowledged it runs for the target (its latest ack's state),
    beside the target's latest `set_params` while the flow has not answered it."""

    target: str
    strategy: str
    params: dict[str, str]
    source: Literal["config", "acknowledged"] = Field(
        description="acknowledged: a command chose it, and the quote flow applied it")
    command_id: str | None = None
    issued_by: str | None = None
    paused: bool = False
    acknowledged_at: datetime | None = Field(
        None, description="the quote flow's latest answer to any command (None: none yet)")
    pending: PendingCommand | None = Field(
        None, description="the target's latest set_params, published and not yet answered")
    refused: RefusedCommand | None = Field(
        None, description="the target's latest set_params, if the quote flow refused it")


class Limits(BaseModel):
    account: dict[str, str | None]
    defaults: dict[str, str | None]
    instruments: dict[str, dict[str, str | None]]


class PositionOut(BaseModel):
    venue: str
    symbol: str
    ts: datetime
    quantity: Decimal
    average_price: Decimal | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    mark_price: Decimal | None


class PnlBar(BaseModel):
    bucket: datetime
    quantity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    samples: int


class OrderEventOut(BaseModel):
    ts: datetime
    ts_ns: int
    venue: str
    symbol: str
    kind: str
    client_order_id: str
    exchange_order_id: str | None
    side: str
    price: Decimal | None
    size: Decimal
    filled: Decimal
    remaining: Decimal
    reason: str | None


class OrderPage(BaseModel):
    items: list[OrderEventOut]
    next_before: int | None = Field(description="`before` for the next (older) page")


class AuditRecordOut(BaseModel):
    ts: datetime
    ts_ns: int
    seq: int
    actor: str
    action: str
    payload: Any
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecordOut]
    next_before: str | None = Field(description="`before` for the next (older) page")


class KeyOut(BaseModel):
    exchange: str
    key_id: str
    api_key_masked: str
    has_password: bool
    has_uid: bool
    created_at: str


class KeyTestOut(BaseModel):
    exchange: str
    key_id: str
    ok: bool
    outcome: Literal["ok", "unreachable", "rejected", "exchange_error", "unsupported"]
    detail: str


class Problem(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None
