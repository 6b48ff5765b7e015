"""Processing Salesforce notifications: match the HubSpot contact, gate, queue for HubSpot."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.delivery.models import Target
from syncgate.delivery.outbox import enqueue
from syncgate.inbox.models import InboxEvent
from syncgate.inbox.store import salesforce_time_ms
from syncgate.sync.contacts import normalise_email
from syncgate.sync.gate import Decision, Direction, Membership, Outcome
from syncgate.sync.models import Contact
from syncgate.sync.processor import ProcessingContext, record_decision
from syncgate.sync.salesforce_gate import SalesforceChange, gate_salesforce_change
from syncgate.sync.segments import is_member

SUPPORTED_OBJECTS = ("Lead", "Contact")


def is_creation(fields: dict[str, str | None], record_known: bool) -> bool:
    """CONTRACT §4: CreatedDate equals LastModifiedDate to the second; else an unknown record."""
    created, modified = fields.get("CreatedDate"), fields.get("LastModifiedDate")
    created_ms, modified_ms = salesforce_time_ms(created), salesforce_time_ms(modified)
    if created_ms is None or modified_ms is None:
        return not record_known
    return created_ms // 1000 == modified_ms // 1000


async def match_contact(session: AsyncSession, record_id: str, email: str | None) -> Contact | None:
    """Rule 6: by link first, then by email (case-insensitive)."""
    linked = await session.scalar(
        select(Contact)
        .where(Contact.salesforce_id == record_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if linked is not None or normalise_email(email) is None:
        return linked
    return await session.scalar(
        select(Contact)
        .where(Contact.email == normalise_email(email), Contact.merged_into_id.is_(None))
        .order_by(Contact.hubspot_id.is_(None), Contact.id)
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def link_record(contact: Contact, object_type: str, record_id: str, modified_ms: int) -> bool:
    """Point the contact at this record unless it follows a more recently modified one."""
    if contact.salesforce_id == record_id:
        return True
    if contact.salesforce_id is not None and modified_ms < (contact.salesforce_modified_ms or 0):
        return False
    contact.salesforce_id = record_id
    contact.salesforce_object = object_type
    contact.salesforce_values = {}
    contact.salesforce_modified_ms = None
    return True


async def process_salesforce_event(
    session: AsyncSession, ctx: ProcessingContext, event: InboxEvent
) -> None:
    """Apply one Outbound Message notification and decide what goes to HubSpot."""
    direction = Direction.SALESFORCE_TO_HUBSPOT
    payload = event.payload
    object_type: str = payload["object_type"]
    record_id: str = payload["record_id"]
    fields: dict[str, str | None] = payload["fields"]
    if object_type not in SUPPORTED_OBJECTS:
        outcome = Outcome(Decision.IGNORED, f"{object_type} records are not synced")
        await record_decision(session, ctx, direction, outcome, None, event)
        return
    if fields.get("IsConverted") == "true":
        reason = "converted Lead: the contact follows the converted Contact"
        await record_decision(
            session, ctx, direction, Outcome(Decision.IGNORED, reason), None, event
        )
        return

    modified_ms = salesforce_time_ms(fields.get("LastModifiedDate")) or event.occurred_at_ms
    cache = ctx.cache if ctx.cache is not None and ctx.cache.serves(event) else None
    if cache is not None:
        contact = cache.match_salesforce_record(record_id, fields.get("Email"))
    else:
        contact = await match_contact(session, record_id, fields.get("Email"))
    record_known = contact is not None and contact.salesforce_id == record_id
    if contact is not None and contact.hubspot_deleted_at is not None:
        reason = "the HubSpot contact is deleted; it is never recreated (rule 9)"
        await record_decision(
            session, ctx, direction, Outcome(Decision.IGNORED, reason), contact, event
        )
        return
    stale = record_known and modified_ms < (contact.salesforce_modified_ms or 0)  # type: ignore[union-attr]
    previous = dict(contact.salesforce_values or {}) if record_known and contact else None
    hubspot_known = contact is not None and contact.hubspot_id is not None
    create_allowed = ctx.create_from_leads if object_type == "Lead" else ctx.create_from_contacts
    if contact is None:
        member = False
    elif cache is not None:
        member = cache.is_member(contact, ctx.inclusion_segment_id)
    else:
        member = await is_member(session, contact, ctx.inclusion_segment_id)
    change = SalesforceChange(
        object_type=object_type,
        fields=fields,
        previous=previous,
        hubspot_properties=contact.property_values() if contact else {},
        hubspot_changed_at={p.name: p.changed_at_ms for p in contact.properties} if contact else {},
        modified_ms=modified_ms,
        creation=is_creation(fields, record_known),
        hubspot_contact_known=hubspot_known,
        create_allowed=create_allowed,
        stale=stale,
    )
    # Rule 4: membership is evaluated on the HubSpot side, before these values are applied.
    outcome = gate_salesforce_change(
        change, Membership(ctx.inclusion_segment_id, member=member), ctx.mappings
    )
    if not stale and (contact is not None or outcome.queues_delivery):
        if contact is None:
            contact = Contact(
                email=normalise_email(fields.get("Email")), properties=[], salesforce_values={}
            )
            session.add(contact)
        previous_link = contact.salesforce_id
        if link_record(contact, object_type, record_id, modified_ms):
            contact.salesforce_values = {**(contact.salesforce_values or {}), **fields}
            contact.salesforce_modified_ms = max(modified_ms, contact.salesforce_modified_ms or 0)
        if cache is None:
            await session.flush()
        else:
            cache.remember(contact, previous_link)
    await record_decision(session, ctx, direction, outcome, contact, event)
    if not outcome.queues_delivery or contact is None:
        return
    source_event = f"{event.source}:{event.id}"
    if cache is not None:
        cache.enqueue(
            session, Target.HUBSPOT, contact, outcome.values, event.received_at, source_event
        )
    else:
        await enqueue(
            session,
            target=Target.HUBSPOT,
            contact=contact,
            values=outcome.values,
            received_at=event.received_at,
            source_event=source_event,
        )
