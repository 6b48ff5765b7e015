"""Sync health (connections, decisions, deliveries, latency), dead-delivery retry and the
contact lookup."""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, or_, select
from starlette.responses import Response

from syncgate.api import operations
from syncgate.connections.status import connection_states
from syncgate.console import auth
from syncgate.console.web import ConsoleRoute, Db, redirect, render
from syncgate.delivery.models import Delivery, DeliveryStatus
from syncgate.errors import AppError
from syncgate.metrics import FORWARD_LATENCY
from syncgate.models import utc_now
from syncgate.sync.contacts import normalise_email
from syncgate.sync.decide.outcomes import Decision, Direction
from syncgate.sync.models import Contact, DecisionRecord
from syncgate.sync.schemas import Email, RowId, SyncStatusOut
from syncgate.sync.status import sync_status

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

WINDOW = timedelta(hours=24)
DEAD_SHOWN = 500
PER_GROUP_SHOWN = 20
PENDING_SHOWN = 20
LATENCY_ROWS = 50_000
CONTACTS_SHOWN = 10
DIRECTION_LABELS = {
    Direction.HUBSPOT_TO_SALESFORCE: "HubSpot → Salesforce",
    Direction.SALESFORCE_TO_HUBSPOT: "Salesforce → HubSpot",
}
DECISION_LABELS = {
    Decision.FORWARDED: "Forwarded",
    Decision.CREATED_OUTSIDE_SEGMENT: "Created outside the segment",
    Decision.SKIPPED_NOT_IN_SEGMENT: "Skipped: not in the segment",
    Decision.SKIPPED_NO_CHANGE: "Skipped: no change",
    Decision.SKIPPED_STALE: "Skipped: stale",
    Decision.SKIPPED_UNMAPPED: "Skipped: unmapped",
    Decision.IGNORED: "Ignored",
}
_EMAIL = TypeAdapter(Email)


@dataclass
class DeadGroup:
    target: str
    error: str
    count: int = 0
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all we know
            if cumulative == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower


def process_latency() -> dict[str, Any]:
    """p50/p99 estimated from this process' FORWARD_LATENCY histogram buckets."""
    buckets: list[tuple[float, float]] = []
    for metric in FORWARD_LATENCY.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    return {
        "count": int(buckets[-1][1]) if buckets else 0,
        "p50": histogram_quantile(0.5, buckets),
        "p99": histogram_quantile(0.99, buckets),
    }


async def database_latency(db: Db, since: datetime) -> dict[str, Any]:
    """Webhook received → delivered, over the deliveries of the window (every process's)."""
    rows = (
        await db.execute(
            select(Delivery.first_received_at, Delivery.delivered_at)
            .where(
                Delivery.status == DeliveryStatus.DONE,
                Delivery.delivered_at >= since,
                # Resyncs and imports start from a job, not a webhook.
                or_(Delivery.source_event.is_(None), Delivery.source_event.not_like("job:%")),
            )
            .limit(LATENCY_ROWS)
        )
    ).all()
    values = sorted(
        max(0.0, (delivered - received).total_seconds())
        for received, delivered in rows
        if delivered is not None
    )
    return {"count": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99)}


async def _decision_table(db: Db, since: datetime) -> dict[str, Any]:
    counts = {
        (direction, decision): count
        for direction, decision, count in (
            await db.execute(
                select(DecisionRecord.direction, DecisionRecord.decision, func.count())
                .where(DecisionRecord.at >= since)
                .group_by(DecisionRecord.direction, DecisionRecord.decision)
            )
        ).all()
    }
    table = {
        decision: [counts.get((direction.value, decision.value), 0) for direction in Direction]
        for decision in Decision
    }
    rows = [
        {"decision": decision.value, "label": DECISION_LABELS[decision], "counts": cells}
        for decision, cells in table.items()
    ]
    totals = [sum(cells[i] for cells in table.values()) for i in range(len(Direction))]
    return {
        "rows": rows,
        "directions": [DIRECTION_LABELS[direction] for direction in Direction],
        "totals": totals,
    }


async def _pending(db: Db) -> dict[str, Any]:
    waiting = [DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT]
    by_target = {
        (target, status): count
        for target, status, count in (
            await db.execute(
                select(Delivery.target, Delivery.status, func.count())
                .where(Delivery.status.in_(waiting))
                .group_by(Delivery.target, Delivery.status)
            )
        ).all()
    }
    rows = (
        await db.execute(
            select(Delivery, Contact.email)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.status.in_(waiting))
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(PENDING_SHOWN)
        )
    ).all()
    return {
        "total": sum(by_target.values()),
        "by_target": by_target,
        "oldest": min((d.created_at for d, _ in rows), default=None),
        "rows": [{"delivery": d, "email": email} for d, email in rows],
    }


async def _dead(db: Db) -> dict[str, Any]:
    total = (
        await db.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.DEAD)
        )
        or 0
    )
    rows = (
        await db.execute(
            select(Delivery, Contact.email)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.status == DeliveryStatus.DEAD)
            .order_by(Delivery.id.desc())
            .limit(DEAD_SHOWN)
        )
    ).all()
    groups: dict[tuple[str, str], DeadGroup] = {}
    for delivery, email in rows:
        error = delivery.last_error or "(no error message recorded)"
        group = groups.setdefault((delivery.target, error), DeadGroup(delivery.target, error))
        group.count += 1
        if len(group.deliveries) < PER_GROUP_SHOWN:
            group.deliveries.append({"delivery": delivery, "email": email})
    return {
        "total": total,
        "shown": len(rows),
        "groups": sorted(groups.values(), key=lambda g: (-g.count, g.target, g.error)),
    }


@router.get("/health")
async def health_page(request: Request, session: auth.SessionTicket, db: Db) -> Response:
    now = utc_now()
    since = now - WINDOW
    return render(
        request,
        "health.html",
        {
            "title": "Sync health",
            "since": since,
            "now": now,
            "connections": await connection_states(db, request.app.state.settings),
            "decisions": await _decision_table(db, since),
            "pending": await _pending(db),
            "dead": await _dead(db),
            "latency": await database_latency(db, since),
            "process_latency": process_latency(),
        },
        session=session,
        page="health",
    )


def _back(posted: auth.Posted) -> str:
    back = posted.text("back")
    return auth.safe_next(back) if back else "/console/health"


@router.post("/deliveries/retry-dead")
async def retry_all(request: Request, posted: auth.PostedForm, db: Db) -> Response:
    result = await operations.retry_dead_deliveries(db)
    if result.retried == 0:
        return redirect(request, _back(posted), "There were no dead deliveries to retry.", "info")
    return redirect(
        request,
        _back(posted),
        f"{result.retried} dead deliver{'y is' if result.retried == 1 else 'ies are'} pending "
        "again; the worker sends them shortly.",
    )


@router.post("/deliveries/{delivery_id}/retry")
async def retry_one(
    request: Request, delivery_id: RowId, posted: auth.PostedForm, db: Db
) -> Response:
    try:
        async with db.begin_nested():
            await operations.retry_delivery(delivery_id, db)
    except AppError as error:
        return redirect(request, _back(posted), error.message, "error")
    return redirect(
        request,
        _back(posted),
        f"Delivery {delivery_id} is pending again; the worker sends it shortly.",
    )


@router.get("/contacts")
async def contact_lookup(
    request: Request,
    session: auth.SessionTicket,
    db: Db,
    email: Annotated[str | None, Query()] = None,
) -> Response:
    error = None
    found: list[dict[str, Any]] = []
    if email is not None and email.strip():
        try:
            normalised = normalise_email(_EMAIL.validate_python(email))
        except ValidationError:
            normalised = None
            error = "Email: enter an address of at most 320 characters."
        if normalised is not None:
            contacts = (
                await db.scalars(
                    select(Contact)
                    .where(Contact.email == normalised)
                    .order_by(Contact.id)
                    .limit(CONTACTS_SHOWN)
                )
            ).all()
            for contact in contacts:
                status = SyncStatusOut.model_validate(
                    await sync_status(db, contact, request.app.state.settings)
                )
                found.append({"contact": contact, "status": status})
    elif email is not None:
        error = "Email: enter the address to look up."
    return render(
        request,
        "contacts.html",
        {
            "title": "Contact lookup",
            "email": email or "",
            "found": found,
            "error": error,
            "decision_labels": DECISION_LABELS,
            "direction_labels": DIRECTION_LABELS,
        },
        session=session,
        status=422 if error else 200,
        page="contacts",
    )
