"""What the console, the API and /metrics say about each platform: connected or not, available
or unavailable since when, how many deliveries wait, the last call that worked and the last
error, and how much of the daily API allowance is used."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.config import Settings
from syncgate.connections.breaker import over_share
from syncgate.connections.credentials import PLATFORM_NAMES, is_connected
from syncgate.connections.models import Breaker, PlatformStatus
from syncgate.delivery.models import Delivery, DeliveryStatus, Target
from syncgate.metrics import (
    DELIVERIES_WAITING,
    PLATFORM_API_ALLOWED,
    PLATFORM_API_USED,
    PLATFORM_UNAVAILABLE_SECONDS,
    PLATFORM_UP,
)
from syncgate.models import utc_now

State = Literal["not_configured", "available", "unavailable", "paused"]


class ApiAllowance(BaseModel):
    used: int
    allowed: int
    percent: float
    at: datetime
    jobs_stop_at_percent: int
    deliveries_stop_at_percent: int


class ConnectionState(BaseModel):
    platform: Target
    configured: bool
    # unavailable: the breaker is open; paused: the allowance is past the deliveries' share.
    state: State
    summary: str
    breaker: Breaker
    unavailable_since: datetime | None
    next_probe_at: datetime | None
    consecutive_failures: int
    waiting: int  # deliveries pending or in flight
    jobs_waiting: bool  # resync, import and backfill wait (breaker, or the jobs' share)
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    api_allowance: ApiAllowance | None


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def connection_states(session: AsyncSession, config: Settings) -> list[ConnectionState]:
    rows = {row.platform: row for row in (await session.scalars(select(PlatformStatus))).all()}
    waiting = dict(
        (
            await session.execute(
                select(Delivery.target, func.count())
                .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT]))
                .group_by(Delivery.target)
            )
        ).all()
    )
    configured = {target: is_connected(config, target.value) for target in Target}
    return [
        _state(target, configured[target], rows.get(target.value), waiting.get(target, 0), config)
        for target in Target
    ]


def _state(
    target: Target,
    configured: bool,
    row: PlatformStatus | None,
    waiting: int,
    config: Settings,
) -> ConnectionState:
    name = PLATFORM_NAMES[target.value]
    row = row or PlatformStatus(platform=target.value, breaker=Breaker.CLOSED)
    allowance = None
    if row.api_used is not None and row.api_allowed and row.api_usage_at is not None:
        allowance = ApiAllowance(
            used=row.api_used,
            allowed=row.api_allowed,
            percent=round(100 * row.api_used / row.api_allowed, 1),
            at=row.api_usage_at,
            jobs_stop_at_percent=config.api_share_for_jobs,
            deliveries_stop_at_percent=config.api_share_for_deliveries,
        )
    state: State = "available"
    if not configured:
        state, summary = "not_configured", f"{name} is not connected"
    elif row.breaker == Breaker.OPEN and row.opened_at is not None:
        state = "unavailable"
        summary = f"{name} unavailable since {format_utc(row.opened_at)}"
    elif allowance and over_share(row, config.api_share_for_deliveries):
        state = "paused"
        summary = f"{name} paused: {allowance.percent:g} % of the daily API allowance used"
    else:
        summary = f"{name} available"
    return ConnectionState(
        platform=target,
        configured=configured,
        state=state,
        summary=f"{summary}, {waiting} waiting",
        breaker=Breaker(row.breaker),
        unavailable_since=row.opened_at if state == "unavailable" else None,
        next_probe_at=row.next_probe_at,
        consecutive_failures=row.consecutive_failures or 0,
        waiting=waiting,
        jobs_waiting=state != "available" or over_share(row, config.api_share_for_jobs),
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        api_allowance=allowance,
    )


def export_metrics(states: list[ConnectionState]) -> None:
    """Set the connection gauges of /metrics from the shared state (every worker's)."""
    now = utc_now()
    for state in states:
        platform = state.platform.value
        DELIVERIES_WAITING.labels(platform).set(state.waiting)
        if not state.configured:
            continue
        PLATFORM_UP.labels(platform).set(0 if state.state == "unavailable" else 1)
        since = state.unavailable_since
        PLATFORM_UNAVAILABLE_SECONDS.labels(platform).set(
            (now - since).total_seconds() if since else 0
        )
        if state.api_allowance is not None:
            PLATFORM_API_USED.labels(platform).set(state.api_allowance.used)
            PLATFORM_API_ALLOWED.labels(platform).set(state.api_allowance.allowed)
