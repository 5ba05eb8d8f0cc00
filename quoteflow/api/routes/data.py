"""What happened: positions, PnL, orders and the audit trail, from TimescaleDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import AfterValidator

from connectors.keycloak import Principal
from connectors.timescale import queries
from quoteflow.api.auth import caller
from quoteflow.api.context import ApiContext, context
from quoteflow.api.routes import API_PREFIX
from quoteflow.api.schemas import AuditPage, OrderPage, PnlBar, PositionOut

router = APIRouter(prefix=API_PREFIX, tags=["data"])
Context = Annotated[ApiContext, Depends(context)]
Viewer = Annotated[Principal, Depends(caller("viewer"))]
PageSize = Annotated[int, Query(ge=1, le=1000)]
_DEFAULT_PNL_SPAN = timedelta(days=1)
_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)  # a day's span back from it stays in range
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _in_range(moment: datetime) -> datetime:
    """Query times without a zone are UTC, as every stored time is; year 1 or 9999 would
    overflow the default span or the nanosecond timestamps (a 500 once, not the caller's
    bad input)."""
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError(f"must lie between {_EARLIEST.date()} and {_LATEST.date()}")
    return moment


Moment = Annotated[datetime, AfterValidator(_in_range)]
# Filters are short names; bounded so nothing long reaches a query.
Name = Annotated[str, Query(min_length=1, max_length=200)]
Nanoseconds = Annotated[int, Query(ge=0, le=2**63 - 1, description="ts_ns from the previous page")]


@router.get("/positions", response_model=list[PositionOut])
def positions(ctx: Context, _: Viewer) -> list[dict]:
    """The last position sample of every instrument."""
    with ctx.services.database.connection() as conn:
        return queries.latest_positions(conn)


@router.get("/pnl", response_model=list[PnlBar])
def pnl(
    ctx: Context, _: Viewer, venue: Name, symbol: Name,
    start: Moment | None = None, end: Moment | None = None,
) -> list[dict]:
    """1-minute position and PnL bars in [start, end); the last day by default."""
    end = end if end is not None else datetime.now(UTC)
    start = start if start is not None else end - _DEFAULT_PNL_SPAN
    if start >= end:
        raise HTTPException(422, f"start {start.isoformat()} is not before end {end.isoformat()}")
    with ctx.services.database.connection() as conn:
        return queries.pnl_1m(conn, venue, symbol, start, end)


@router.get("/orders", response_model=OrderPage)
def orders(
    ctx: Context, _: Viewer,
    venue: Name | None = None, symbol: Name | None = None, client_order_id: Name | None = None,
    before: Nanoseconds | None = None,
    limit: PageSize = 100,
) -> OrderPage:
    """Order events, newest first."""
    with ctx.services.database.connection() as conn:
        rows = queries.order_events(
            conn, venue=venue, symbol=symbol, client_order_id=client_order_id,
            before_ns=before, limit=limit,
        )
    return OrderPage(items=rows, next_before=rows[-1]["ts_ns"] if len(rows) == limit else None)


@router.get("/audit", response_model=AuditPage)
def audit(
    ctx: Context, _: Viewer,
    actor: Name | None = None, action: Name | None = None,
    since: Moment | None = None, until: Moment | None = None,
    before: Annotated[str | None, Query(pattern=r"^\d{1,19}\.[0-9a-f]{64}$",
                                        description="next_before of the previous page")] = None,
    limit: PageSize = 100,
) -> AuditPage:
    """Audit records of every chain (executor, API), newest first."""
    cursor = None
    if before is not None:
        ts_ns, record_hash = before.split(".")
        if int(ts_ns) > 2**63 - 1:
            raise HTTPException(422, "before: the timestamp is out of range")
        cursor = (int(ts_ns), record_hash)
    with ctx.services.database.connection() as conn:
        rows = queries.audit_records(
            conn, actor=actor, action=action,
            since=since, until=until,
            before=cursor, limit=limit,
        )
    last = rows[-1] if len(rows) == limit else None
    return AuditPage(items=rows,
                     next_before=f"{last['ts_ns']}.{last['hash']}" if last else None)
