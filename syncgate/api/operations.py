"""Decisions, deliveries and dead-letter replay (§6)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel
from sqlalchemy import select, update

from syncgate.api import examples
from syncgate.api.deps import ADMIN_RESPONSES, AdminDep, SessionDep
from syncgate.api.examples import answers
from syncgate.api.paging import Limit
from syncgate.delivery.models import Delivery, DeliveryStatus, Target
from syncgate.errors import Conflict, NotFound, error_responses
from syncgate.models import utc_now
from syncgate.sync.decide.outcomes import Decision, Direction
from syncgate.sync.models import DecisionRecord
from syncgate.sync.schemas import ROW_ID_MAX, ROW_ID_MIN, DecisionOut

# Ids outside a column's range name no row, and the drivers would fail to bind them.
ContactId = Annotated[int | None, Query(ge=ROW_ID_MIN, le=ROW_ID_MAX)]
DeliveryId = Annotated[int, Path(ge=-(2**63), le=2**63 - 1)]  # deliveries.id is a BIGINT

router = APIRouter(
    prefix="/api", tags=["operations"], dependencies=[AdminDep], responses=ADMIN_RESPONSES
)


class DecisionList(BaseModel):
    items: list[DecisionOut]


@router.get(
    "/decisions",
    summary="List gate decisions",
    responses=answers(200, {"items": [examples.DECISION]}),
)
async def list_decisions(
    session: SessionDep,
    contact_id: ContactId = None,
    decision: Decision | None = None,
    direction: Direction | None = None,
    limit: Limit = 100,
) -> DecisionList:
    """Newest first: one decision per change, contact and direction, with its reason."""
    query = select(DecisionRecord).order_by(DecisionRecord.id.desc()).limit(limit)
    if contact_id is not None:
        query = query.where(DecisionRecord.contact_id == contact_id)
    if decision is not None:
        query = query.where(DecisionRecord.decision == decision)
    if direction is not None:
        query = query.where(DecisionRecord.direction == direction)
    rows = (await session.scalars(query)).all()
    return DecisionList(items=[DecisionOut.model_validate(r, from_attributes=True) for r in rows])


class DeliveryOut(BaseModel):
    id: int
    target: Target
    operation: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    contact_id: int
    values: dict[str, Any]
    history: list[dict[str, Any]]
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class RetryOut(BaseModel):
    retried: int


@router.get(
    "/deliveries",
    summary="List deliveries",
    responses=answers(200, {"items": [examples.DELIVERY]}),
)
async def list_deliveries(
    session: SessionDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    target: Target | None = None,
    contact_id: ContactId = None,
    limit: Limit = 100,
) -> DeliveryList:
    """Newest first. `last_error` says why a delivery waits or died (the platform's message,
    or "Salesforce is not connected" while its credentials are missing)."""
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status_ is not None:
        query = query.where(Delivery.status == status_)
    if target is not None:
        query = query.where(Delivery.target == target)
    if contact_id is not None:
        query = query.where(Delivery.contact_id == contact_id)
    rows = (await session.scalars(query)).all()
    return DeliveryList(items=[DeliveryOut.model_validate(r, from_attributes=True) for r in rows])


def _revive(now: datetime) -> dict[str, Any]:
    # A fresh set of attempts and a fresh retry window; the earlier ones stay in the history.
    return {
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "retrying_since": None,
    }


@router.post(
    "/deliveries/retry-dead",
    summary="Retry every dead delivery",
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(202, examples.RETRIED),
)
async def retry_dead_deliveries(session: SessionDep) -> RetryOut:
    """Every dead delivery becomes pending again with a fresh count of attempts."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.DEAD)
        .values(**_revive(utc_now()))
        .execution_options(synchronize_session=False)
    )
    return RetryOut(retried=result.rowcount or 0)  # type: ignore[attr-defined]


@router.post(
    "/deliveries/{delivery_id}/retry",
    summary="Retry a dead delivery",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404, 409)
    | answers(202, {**examples.DELIVERY, "status": "pending", "attempts": 0}),
)
async def retry_delivery(delivery_id: DeliveryId, session: SessionDep) -> DeliveryOut:
    """A dead delivery becomes pending again (409 `delivery_not_dead` otherwise); its history
    of earlier attempts is kept."""
    delivery = await session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    if delivery.status != DeliveryStatus.DEAD:
        raise Conflict(
            "delivery_not_dead",
            f"delivery {delivery_id} is {delivery.status}; only dead ones retry",
        )
    for key, value in _revive(utc_now()).items():
        setattr(delivery, key, value)
    await session.flush()
    return DeliveryOut.model_validate(delivery, from_attributes=True)
