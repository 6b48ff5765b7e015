"""Why a contact does or does not sync, in plain words (GET /api/contacts/{id}/sync-status)."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.config import Settings
from syncgate.connections.credentials import (
    HUBSPOT,
    PLATFORM_NAMES,
    SALESFORCE,
    how_to_connect,
    is_connected,
    not_connected,
)
from syncgate.delivery.models import Delivery, DeliveryStatus
from syncgate.sync.filters import parse_filter, why_not
from syncgate.sync.models import Contact, DecisionRecord, Segment
from syncgate.sync.preferences import load_settings
from syncgate.sync.segments import is_member

RECENT_DECISIONS = 10


async def sync_status(session: AsyncSession, contact: Contact, config: Settings) -> dict[str, Any]:
    settings = await load_settings(session)
    segment = (
        await session.get(Segment, settings.inclusion_segment_id)
        if settings.inclusion_segment_id is not None
        else None
    )
    member = await is_member(session, contact, segment.id) if segment else None
    pending = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.contact_id == contact.id,
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT]),
        )
    )
    dead = (
        await session.scalars(
            select(Delivery)
            .where(Delivery.contact_id == contact.id, Delivery.status == DeliveryStatus.DEAD)
            .order_by(Delivery.id.desc())
        )
    ).all()
    decisions = (
        await session.scalars(
            select(DecisionRecord)
            .where(DecisionRecord.contact_id == contact.id)
            .order_by(DecisionRecord.id.desc())
            .limit(RECENT_DECISIONS)
        )
    ).all()

    would_sync, reason = _explain(contact, segment, member)
    if would_sync and dead:
        latest = dead[0]
        reason += (
            f" But a delivery to {latest.target} is dead: {latest.last_error}. Fix the cause, then"
            f" retry it (POST /api/deliveries/{latest.id}/retry)."
        )
    if would_sync:
        reason += "".join(
            f" But {not_connected(platform)}: changes for {PLATFORM_NAMES[platform]} wait as"
            f" pending deliveries until its credentials are set ({how_to_connect(platform)})."
            for platform in (SALESFORCE, HUBSPOT)
            if not is_connected(config, platform)
        )
    return {
        "inclusion_segment_id": segment.id if segment else None,
        "in_inclusion_segment": member,
        "would_sync": would_sync,
        "reason": reason,
        "last_decisions": [
            {
                "id": d.id,
                "at": d.at,
                "direction": d.direction,
                "decision": d.decision,
                "contact_id": d.contact_id,
                "source_event": d.source_event,
                "detail": d.detail,
            }
            for d in decisions
        ],
        "pending_deliveries": pending or 0,
        "dead_deliveries": [
            {"id": d.id, "target": d.target, "last_error": d.last_error} for d in dead
        ],
        "salesforce": (
            {"id": contact.salesforce_id, "object": contact.salesforce_object}
            if contact.salesforce_id
            else None
        ),
    }


def _explain(contact: Contact, segment: Segment | None, member: bool | None) -> tuple[bool, str]:
    if contact.merged_into_id is not None:
        return False, (
            f"Merged into contact {contact.merged_into_id} in HubSpot; that contact syncs instead."
        )
    if contact.hubspot_deleted_at is not None:
        return False, (
            "Deleted in HubSpot. syncgate never deletes the Salesforce record or recreates the "
            "contact; the link is kept in case it is restored."
        )
    if segment is not None and not member:
        why = (
            why_not(parse_filter(segment.filter), contact.property_values())
            if segment.filter
            else None
        )
        return False, (
            f"Not in the inclusion segment '{segment.name}' (id {segment.id})"
            + (f": {why}." if why else ".")
            + " Its changes are held back until it joins; then it syncs in full."
        )
    if contact.salesforce_id is None and contact.email is None:
        return False, "No email address: a Salesforce record can be neither matched nor created."
    where = (
        f"In the inclusion segment '{segment.name}' (id {segment.id})"
        if segment is not None
        else "No inclusion segment is set, so every contact may sync"
    )
    link = (
        f"linked to Salesforce {contact.salesforce_object} {contact.salesforce_id}"
        if contact.salesforce_id
        else "not linked yet: the next change finds its Salesforce record by email or creates it"
    )
    return True, f"{where}; {link}."
