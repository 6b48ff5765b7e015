"""Claiming a round: the due inbox events, each payload parsed once, what the round's rules need
(settings, mappings, active segments), and the HubSpot contacts it must read first."""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.config import Settings
from syncgate.db import among
from syncgate.inbox.models import InboxEvent, InboxStatus, Source
from syncgate.models import table_of, utc_now
from syncgate.platforms.hubspot.client import HubSpotClient, HubSpotContact, HubSpotError
from syncgate.platforms.hubspot.events import HubSpotEvent
from syncgate.sync.mapping import Mapping, load_mappings
from syncgate.sync.models import Contact
from syncgate.sync.preferences import load_settings
from syncgate.sync.segments import ActiveSegment, active_segments, properties_to_read

log = logging.getLogger("syncgate.processing")

# Longer than one round can take; an event whose worker died is claimed again after it.
LEASE = timedelta(seconds=120)
_INBOX = table_of(InboxEvent)
_CONTACTS = table_of(Contact)
# RoundEvent's columns in its order, then the payload as stored, text: parsed once, straight
# into the event's model.
_CLAIMED = (
    *_INBOX.c["id", "source", "kind", "object_key", "occurred_at_ms", "received_at", "attempts"],
    cast(_INBOX.c.payload, Text).label("payload"),
)


@dataclass(frozen=True, slots=True)
class SalesforceNotification:
    object_type: str
    record_id: str
    fields: dict[str, str | None]


@dataclass(slots=True)
class RoundEvent:
    """A claimed inbox event, its payload parsed (or why it could not be)."""

    id: int
    source: str
    kind: str
    object_key: str
    occurred_at_ms: int
    received_at: datetime
    attempts: int
    hubspot: HubSpotEvent | None = None
    salesforce: SalesforceNotification | None = None
    unparsable: str | None = None

    @property
    def source_event(self) -> str:
        return f"{self.source}:{self.id}"


@dataclass
class RoundContext:
    """What every event of a round needs, loaded once per round."""

    config: Settings
    mappings: list[Mapping]
    inclusion_segment_id: int | None
    new_contacts_as: str
    create_from_leads: bool
    create_from_contacts: bool
    segments: list[ActiveSegment]
    # HubSpot contacts read ahead of the round's transaction, by id; None: HubSpot has none.
    reads: dict[str, HubSpotContact | None] = field(default_factory=dict)
    read_error: str | None = None  # why nothing could be read (no credentials)
    unreadable: set[str] = field(default_factory=set)  # reads that failed; retried later


def parse(row: Any) -> RoundEvent:
    """A row of `_CLAIMED` as a RoundEvent, its payload parsed (or why it could not be)."""
    *columns, payload = row
    event = RoundEvent(*columns)
    try:
        if event.source == Source.HUBSPOT:
            event.hubspot = HubSpotEvent.model_validate_json(payload)
        else:
            fields = json.loads(payload)
            event.salesforce = SalesforceNotification(
                fields["object_type"], fields["record_id"], dict(fields["fields"])
            )
    except (ValueError, KeyError, TypeError) as error:
        event.unparsable = f"{type(error).__name__}: {error}"
    return event


async def claim(
    session: AsyncSession, config: Settings, batch_size: int
) -> tuple[list[RoundEvent], RoundContext, list[str]]:
    """Lease up to `batch_size` due events; with the round's context and the HubSpot ids to
    read: every created contact, and every contact a property change is the first sight of."""
    now = utc_now()
    dialect = session.get_bind().dialect
    rows = (
        await session.execute(
            select(*_CLAIMED)
            .where(_INBOX.c.status == InboxStatus.PENDING, _INBOX.c.next_attempt_at <= now)
            .order_by(_INBOX.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    settings = await load_settings(session)
    context = RoundContext(
        config=config,
        mappings=await load_mappings(session),
        inclusion_segment_id=settings.inclusion_segment_id,
        new_contacts_as=settings.new_contacts_as,
        create_from_leads=settings.create_from_leads,
        create_from_contacts=settings.create_from_contacts,
        segments=await active_segments(session),
    )
    if not rows:
        return [], context, []
    await session.execute(
        update(_INBOX)
        .where(among(dialect, _INBOX.c.id, [row.id for row in rows]))
        .values(next_attempt_at=now + LEASE, attempts=_INBOX.c.attempts + 1)
    )
    events = [parse(row) for row in rows]
    for event in events:
        event.attempts += 1
    created, changed = set(), set()
    portal = config.hubspot_portal_id
    for event in events:
        parsed = event.hubspot
        if parsed is None or (portal is not None and parsed.portal_id != portal):
            continue
        if parsed.subscription_type == "contact.creation":
            created.add(str(parsed.object_id))
        elif parsed.subscription_type == "contact.propertyChange" and parsed.property_name:
            changed.add(str(parsed.object_id))
    if changed:
        known = await session.scalars(
            select(_CONTACTS.c.hubspot_id).where(among(dialect, _CONTACTS.c.hubspot_id, changed))
        )
        changed -= set(known)
    return events, context, sorted(created | changed)


async def read_ahead(
    hubspot: HubSpotClient | None, context: RoundContext, hubspot_ids: Sequence[str]
) -> None:
    """Read the contacts from HubSpot before the round's transaction (batched, 100 per call)."""
    if not hubspot_ids:
        return
    if hubspot is None:
        context.read_error = "no HubSpot API credentials are configured"
        return
    properties = properties_to_read(context.mappings, context.segments)
    try:
        read = await hubspot.batch_read(hubspot_ids, properties)
    except HubSpotError as error:
        # Transient, or permanent but often a fixable setup problem: the events needing these
        # contacts retry with backoff until their attempts run out.
        log.warning("reading contacts from HubSpot failed; will retry: %s", error)
        context.unreadable = set(hubspot_ids)
        return
    found = {contact.id: contact for contact in read}
    for hubspot_id in hubspot_ids:
        context.reads[hubspot_id] = found.get(hubspot_id)  # absent: deleted since, or never was
