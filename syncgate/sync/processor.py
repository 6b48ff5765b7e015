"""Processing inbox events: update the mirror, re-evaluate segments, apply the gate, queue."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.config import Settings
from syncgate.delivery.models import Delivery, DeliveryStatus, Operation, Target
from syncgate.delivery.outbox import enqueue
from syncgate.inbox.models import InboxEvent, InboxStatus, Source
from syncgate.platforms.hubspot.client import HubSpotContact
from syncgate.platforms.hubspot.events import HubSpotEvent
from syncgate.sync import contacts as store
from syncgate.sync.decisions import add_decision
from syncgate.sync.gate import (
    Decision,
    Direction,
    HubSpotChange,
    Membership,
    Outcome,
    gate_hubspot_change,
    salesforce_field,
)
from syncgate.sync.mapping import Mapping
from syncgate.sync.models import Contact
from syncgate.sync.round_cache import RoundCache, RoundKeys
from syncgate.sync.segments import ActiveSegment, refresh_memberships

log = logging.getLogger("syncgate.processor")


@dataclass
class ProcessingContext:
    """What every event of one round needs, loaded once per round."""

    config: Settings
    mappings: list[Mapping]
    inclusion_segment_id: int | None
    new_contacts_as: str
    create_from_leads: bool
    create_from_contacts: bool
    active_segments: list[ActiveSegment] = field(default_factory=list)
    # HubSpot contacts read ahead of the transaction for `contact.creation` events, by id;
    # None marks a contact HubSpot no longer has.
    hubspot_reads: dict[str, HubSpotContact | None] = field(default_factory=dict)
    hubspot_read_errors: dict[str, str] = field(default_factory=dict)
    recorded: list[tuple[Direction, Decision]] = field(default_factory=list)
    # Set while a round processes its events together (see RoundCache).
    cache: RoundCache | None = None


def round_keys(ctx: ProcessingContext, events: Sequence[InboxEvent]) -> RoundKeys:
    """The events of a round that a RoundCache serves, with the contacts they touch: HubSpot
    property changes, creations read from HubSpot, and Salesforce notifications in a round of
    only those. Every other event reads and writes the database itself."""
    keys = RoundKeys()
    portal = ctx.config.hubspot_portal_id
    for event in events:
        if event.source != Source.HUBSPOT:
            fields = event.payload.get("fields") or {}
            keys.salesforce_records[event.id] = (event.payload["record_id"], fields.get("Email"))
            continue
        if event.kind not in ("contact.propertyChange", "contact.creation"):
            continue
        parsed = HubSpotEvent.model_validate(event.payload)
        hubspot_id = str(parsed.object_id)
        if portal is not None and parsed.portal_id != portal:
            continue
        if parsed.subscription_type == "contact.propertyChange":
            served = bool(parsed.property_name)
        else:
            readable = hubspot_id not in ctx.hubspot_read_errors
            served = readable and ctx.hubspot_reads.get(hubspot_id) is not None
        if served:
            keys.hubspot_ids[event.id] = hubspot_id
    if any(event.source == Source.HUBSPOT for event in events):
        # A HubSpot change can alter the emails that notifications are matched by.
        keys.salesforce_records.clear()
    return keys


async def record_decision(
    session: AsyncSession,
    ctx: ProcessingContext,
    direction: Direction,
    outcome: Outcome,
    contact: Contact | None,
    event: InboxEvent,
) -> None:
    add_decision(session, direction, outcome, contact, f"{event.source}:{event.id}")
    ctx.recorded.append((direction, outcome.decision))


async def _locked_contact(session: AsyncSession, hubspot_id: str) -> Contact | None:
    """The contact with its row locked (PostgreSQL) and its properties freshly loaded."""
    return await session.scalar(
        select(Contact)
        .where(Contact.hubspot_id == hubspot_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _contact_for(session: AsyncSession, ctx: ProcessingContext, hubspot_id: str) -> Contact:
    if ctx.cache is not None and (cached := ctx.cache.contacts.get(hubspot_id)) is not None:
        return cached
    contact = await _locked_contact(session, hubspot_id)
    if contact is None:
        contact = Contact(hubspot_id=hubspot_id, properties=[], salesforce_values={})
        session.add(contact)
        await session.flush()
    return contact


def hubspot_properties_to_read(mappings: list[Mapping], filter_properties: set[str]) -> list[str]:
    """Mapped properties and every property a segment filters on (CONTRACT §4)."""
    return sorted({"email", *(m.hubspot_property for m in mappings), *filter_properties})


async def _queued_salesforce_values(
    session: AsyncSession, ctx: ProcessingContext, contact: Contact
) -> dict[str, object]:
    """What the contact's pending and in-flight Salesforce deliveries will write, by field name
    (oldest first, so later values win), for the gate to compare with."""
    rows: Sequence[dict[str, Any]]
    if ctx.cache is not None and ctx.cache.covers(contact):
        rows = ctx.cache.queued_salesforce_values(contact)
    else:
        rows = (
            await session.scalars(
                select(Delivery.values)
                .where(
                    Delivery.contact_id == contact.id,
                    Delivery.target == Target.SALESFORCE,
                    Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT]),
                )
                .order_by(Delivery.id)
            )
        ).all()
    object_type = contact.salesforce_object or ctx.new_contacts_as
    fields = {m.hubspot_property: salesforce_field(m, object_type) for m in ctx.mappings}
    queued: dict[str, object] = {}
    for values in rows:
        for prop, value in values.items():
            if (name := fields.get(prop)) is not None:
                queued[name] = value
    return queued


async def _gate_and_queue(
    session: AsyncSession,
    ctx: ProcessingContext,
    event: InboxEvent,
    contact: Contact,
    *,
    changed: frozenset[str],
    stale: bool,
    full: bool,
) -> None:
    inclusion = ctx.inclusion_segment_id
    cache = ctx.cache if ctx.cache is not None and ctx.cache.covers(contact) else None
    if cache is not None:
        before, after = cache.refresh_memberships(contact, ctx.active_segments)
    else:
        before, after = await refresh_memberships(session, contact, ctx.active_segments)
    member = inclusion in after
    membership = Membership(inclusion, member=member, joined=member and inclusion not in before)
    change = HubSpotChange(
        changed=changed,
        properties=contact.property_values(),
        salesforce_object=contact.salesforce_object or ctx.new_contacts_as,
        linked=contact.salesforce_id is not None,
        salesforce_values=contact.salesforce_values or {},
        stale=stale,
        full=full,
        queued_values=await _queued_salesforce_values(session, ctx, contact),
    )
    outcome = gate_hubspot_change(change, membership, ctx.mappings)
    await record_decision(session, ctx, Direction.HUBSPOT_TO_SALESFORCE, outcome, contact, event)
    source_event = f"{event.source}:{event.id}"
    if not outcome.queues_delivery:
        return
    if cache is not None:
        cache.enqueue(
            session, Target.SALESFORCE, contact, outcome.values, event.received_at, source_event
        )
    else:
        await enqueue(
            session,
            target=Target.SALESFORCE,
            contact=contact,
            values=outcome.values,
            received_at=event.received_at,
            source_event=source_event,
        )


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _ignored(reason: str) -> Outcome:
    return Outcome(Decision.IGNORED, reason)


async def process_hubspot_event(
    session: AsyncSession, ctx: ProcessingContext, event: InboxEvent
) -> None:
    """Apply one HubSpot webhook event to the mirror and decide what goes to Salesforce."""
    parsed = HubSpotEvent.model_validate(event.payload)
    direction = Direction.HUBSPOT_TO_SALESFORCE
    hubspot_id = str(parsed.object_id)
    portal = ctx.config.hubspot_portal_id
    if portal is not None and parsed.portal_id != portal:
        outcome = _ignored(f"event from portal {parsed.portal_id}, not portal {portal}")
        await record_decision(session, ctx, direction, outcome, None, event)
        return

    kind = parsed.subscription_type
    if kind == "contact.propertyChange" and parsed.property_name:
        contact = await _contact_for(session, ctx, hubspot_id)
        if contact.hubspot_deleted_at is not None:
            await record_decision(
                session, ctx, direction, _ignored("contact is deleted in HubSpot"), contact, event
            )
            return
        update = store.apply_properties(
            contact, {parsed.property_name: parsed.property_value}, parsed.occurred_at
        )
        await _gate_and_queue(
            session,
            ctx,
            event,
            contact,
            changed=update.changed,
            stale=bool(update.stale) and not update.changed,
            full=False,
        )
    elif kind == "contact.creation":
        await _process_creation(session, ctx, event, hubspot_id)
    elif kind in ("contact.deletion", "contact.privacyDeletion"):
        await _process_deletion(session, ctx, event, hubspot_id, parsed)
    elif kind == "contact.restore":
        restored = await _locked_contact(session, hubspot_id)
        # Only a restore newer than the deletion undoes it (they may arrive out of order).
        deleted_at = restored.hubspot_deleted_at if restored is not None else None
        if restored is not None and deleted_at and deleted_at <= _moment(parsed.occurred_at):
            restored.hubspot_deleted_at = None
        reason = "restored in HubSpot; later changes sync again under the gate"
        await record_decision(session, ctx, direction, _ignored(reason), restored, event)
    elif kind == "contact.merge":
        await _process_merge(session, ctx, event, parsed)
    else:
        outcome = _ignored(f"unsupported event {kind!r}")
        await record_decision(session, ctx, direction, outcome, None, event)


async def _process_creation(
    session: AsyncSession, ctx: ProcessingContext, event: InboxEvent, hubspot_id: str
) -> None:
    direction = Direction.HUBSPOT_TO_SALESFORCE
    if hubspot_id in ctx.hubspot_read_errors:
        contact = await _contact_for(session, ctx, hubspot_id)
        reason = f"cannot read the new contact from HubSpot: {ctx.hubspot_read_errors[hubspot_id]}"
        await record_decision(session, ctx, direction, _ignored(reason), contact, event)
        return
    read = ctx.hubspot_reads.get(hubspot_id)
    if read is None:
        reason = "the contact no longer exists in HubSpot"
        await record_decision(
            session,
            ctx,
            direction,
            _ignored(reason),
            await _locked_contact(session, hubspot_id),
            event,
        )
        return
    contact = await _contact_for(session, ctx, hubspot_id)
    update = store.apply_properties(
        contact, read.properties, max(read.updated_at_ms, event.occurred_at_ms)
    )
    await _gate_and_queue(
        session, ctx, event, contact, changed=update.changed, stale=False, full=True
    )


async def _process_deletion(
    session: AsyncSession,
    ctx: ProcessingContext,
    event: InboxEvent,
    hubspot_id: str,
    parsed: HubSpotEvent,
) -> None:
    contact = await _locked_contact(session, hubspot_id)
    # Events of separate webhook calls arrive in any order: a restore that happened after this
    # deletion may have been processed before it.
    restored_since = await session.scalar(
        select(InboxEvent.id)
        .where(
            InboxEvent.object_key == event.object_key,
            InboxEvent.kind == "contact.restore",
            InboxEvent.status == InboxStatus.DONE,
            InboxEvent.occurred_at_ms > parsed.occurred_at,
        )
        .limit(1)
    )
    if contact is not None and restored_since is None:
        contact.hubspot_deleted_at = _moment(parsed.occurred_at)
    privacy = parsed.subscription_type == "contact.privacyDeletion"
    reason = (
        "privacy deletion" if privacy else "deleted"
    ) + " in HubSpot; the Salesforce record is never deleted and the link is kept (rule 9)"
    if restored_since is not None:
        reason += "; it has been restored since"
    await record_decision(
        session, ctx, Direction.HUBSPOT_TO_SALESFORCE, _ignored(reason), contact, event
    )


async def _move_pending_delivery(session: AsyncSession, merged: Contact, survivor: Contact) -> None:
    """Hand a queued Salesforce change of a merged contact to the survivor, with the link.

    Left behind, it would go out as an unlinked contact: found by email at best, created
    again as a duplicate when the record's email differs.
    """
    moved = await session.scalar(
        select(Delivery)
        .where(
            Delivery.contact_id == merged.id,
            Delivery.target == Target.SALESFORCE,
            Delivery.status == DeliveryStatus.PENDING,
        )
        .with_for_update()
    )
    if moved is None:
        return
    kept = await session.scalar(
        select(Delivery)
        .where(
            Delivery.contact_id == survivor.id,
            Delivery.target == Target.SALESFORCE,
            Delivery.status == DeliveryStatus.PENDING,
        )
        .with_for_update()
    )
    if kept is None:
        moved.contact_id = survivor.id
        moved.operation = Operation.UPDATE
    else:
        # The survivor's own values win where both changed the same property.
        kept.values = {**moved.values, **kept.values}
        kept.first_received_at = min(kept.first_received_at, moved.first_received_at)
        await session.delete(moved)
    await session.flush()


async def _process_merge(
    session: AsyncSession, ctx: ProcessingContext, event: InboxEvent, parsed: HubSpotEvent
) -> None:
    """The surviving contact keeps (or takes over) the Salesforce link of the merged ones."""
    survivor_id = str(parsed.new_object_id or parsed.primary_object_id or parsed.object_id)
    merged_ids = {str(i) for i in (parsed.merged_object_ids or [])}
    if parsed.primary_object_id is not None:
        merged_ids.add(str(parsed.primary_object_id))
    merged_ids.discard(survivor_id)
    survivor = await _contact_for(session, ctx, survivor_id)
    for merged_id in sorted(merged_ids):
        merged = await _locked_contact(session, merged_id)
        if merged is None:
            continue
        if survivor.salesforce_id is None and merged.salesforce_id is not None:
            salesforce_id, merged.salesforce_id = merged.salesforce_id, None
            await session.flush()  # the id is unique: free it before the survivor takes it
            survivor.salesforce_id = salesforce_id
            survivor.salesforce_object = merged.salesforce_object
            survivor.salesforce_values = merged.salesforce_values
            survivor.salesforce_modified_ms = merged.salesforce_modified_ms
            await _move_pending_delivery(session, merged, survivor)
        merged.merged_into_id = survivor.id
        merged.hubspot_deleted_at = _moment(parsed.occurred_at)
    reason = f"merged into HubSpot contact {survivor_id}, which keeps the Salesforce link"
    await record_decision(
        session, ctx, Direction.HUBSPOT_TO_SALESFORCE, _ignored(reason), survivor, event
    )
