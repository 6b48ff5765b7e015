"""Queueing deliveries: one pending delivery per contact and target, coalesced."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.delivery.models import Delivery, DeliveryStatus, Operation, Target
from syncgate.sync.models import Contact


async def enqueue(
    session: AsyncSession,
    *,
    target: Target,
    contact: Contact,
    values: dict[str, Any],
    received_at: datetime,
    source_event: str | None,
) -> Delivery:
    """Queue values for a contact's record on `target`, merged into its pending delivery if any.

    The row lock makes a worker that is claiming the same delivery wait, so values are never
    merged into a delivery that is already on its way.
    """
    pending = await session.scalar(
        select(Delivery)
        .where(
            Delivery.contact_id == contact.id,
            Delivery.target == target,
            Delivery.status == DeliveryStatus.PENDING,
        )
        .order_by(Delivery.id.desc())  # the one that goes out last
        .limit(1)
        .with_for_update()
    )
    if pending is None:
        pending = new_delivery(target, contact, values, received_at, source_event)
        session.add(pending)
    else:
        coalesce(pending, values, received_at, source_event)
    await session.flush()
    return pending


def new_delivery(
    target: Target,
    contact: Contact,
    values: dict[str, Any],
    received_at: datetime,
    source_event: str | None,
) -> Delivery:
    linked = contact.salesforce_id if target is Target.SALESFORCE else contact.hubspot_id
    return Delivery(
        target=target,
        operation=Operation.UPDATE if linked else Operation.CREATE,
        contact=contact,
        values=dict(values),
        first_received_at=received_at,
        source_event=source_event,
        history=[],
    )


def coalesce(
    pending: Delivery, values: dict[str, Any], received_at: datetime, source_event: str | None
) -> None:
    """Merge newer values into a pending delivery: the latest value per field wins."""
    pending.values = {**pending.values, **values}
    pending.first_received_at = min(pending.first_received_at, received_at)
    pending.source_event = source_event
