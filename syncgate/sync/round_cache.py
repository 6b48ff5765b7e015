"""What the events of one processing round share, read in a few queries up front.

Processing event by event costs a dozen statements each (contact, memberships, queued
deliveries, writes). A round instead locks and loads its contacts, their segment memberships
and their queued deliveries at once, works on them in memory, and leaves the writes to one
flush at the end, where SQLAlchemy batches them per table.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.db import insert_ignoring_conflicts
from syncgate.delivery.models import Delivery, DeliveryStatus, Target
from syncgate.delivery.outbox import coalesce, new_delivery
from syncgate.inbox.models import InboxEvent
from syncgate.sync.contacts import normalise_email
from syncgate.sync.models import Contact, SegmentMember
from syncgate.sync.segments import ActiveSegment, add_to_sizes, membership_change


@dataclass
class RoundKeys:
    """The events a round cache serves, by inbox id, with the contacts they touch."""

    hubspot_ids: dict[int, str] = field(default_factory=dict)
    # Salesforce record id and email of each notification.
    salesforce_records: dict[int, tuple[str, str | None]] = field(default_factory=dict)


class RoundCache:
    def __init__(self, keys: RoundKeys) -> None:
        self.keys = keys
        self.contacts: dict[str, Contact] = {}  # by HubSpot id
        self._by_salesforce_id: dict[str, Contact] = {}
        self._by_email: dict[str, list[Contact]] = defaultdict(list)
        # Keyed by the contact objects: a contact created in this round has no id until the
        # round's flush.
        self._members: dict[Contact, set[int]] = {}
        # Salesforce values of in-flight deliveries per contact, oldest first (read only).
        self._in_flight: dict[Contact, list[dict[str, Any]]] = defaultdict(list)
        # The pending delivery per contact and target (locked, coalesced into).
        self._pending: dict[tuple[Contact, str], Delivery] = {}
        self._joined: set[tuple[int, Contact]] = set()
        self._left: set[tuple[int, Contact]] = set()
        self._size_steps: dict[int, int] = defaultdict(int)

    @classmethod
    async def load(cls, session: AsyncSession, keys: RoundKeys) -> "RoundCache":
        """Lock and load the round's contacts (HubSpot ones created when new) with their
        memberships and queued deliveries."""
        cache = cls(keys)
        hubspot_ids = sorted(set(keys.hubspot_ids.values()))
        record_ids = sorted({record_id for record_id, _ in keys.salesforce_records.values()})
        emails = sorted(
            {e for _, raw in keys.salesforce_records.values() if (e := normalise_email(raw))}
        )
        conditions: list[ColumnElement[bool]] = [
            Contact.hubspot_id.in_(hubspot_ids) if hubspot_ids else false(),
            Contact.salesforce_id.in_(record_ids) if record_ids else false(),
            Contact.email.in_(emails) if emails else false(),
        ]
        found = await session.scalars(
            select(Contact)
            .where(or_(*conditions))
            .order_by(Contact.id)  # one lock order for every worker: no deadlocks
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        loaded = list(found)
        known = {c.hubspot_id for c in loaded}
        created = [
            Contact(hubspot_id=hubspot_id, properties=[], salesforce_values={})
            for hubspot_id in hubspot_ids
            if hubspot_id not in known
        ]
        session.add_all(created)
        await session.flush()
        by_id = {contact.id: contact for contact in [*loaded, *created]}
        for contact in by_id.values():
            cache._index(contact)
        await cache._load_memberships(session, by_id)
        queued = select(Delivery).where(Delivery.contact_id.in_(by_id))
        for delivery in await session.scalars(
            queued.where(
                Delivery.status == DeliveryStatus.IN_FLIGHT, Delivery.target == Target.SALESFORCE
            ).order_by(Delivery.id)
        ):
            cache._in_flight[by_id[delivery.contact_id]].append(delivery.values)
        # Locked like `enqueue` does: a worker claiming one waits until this round commits.
        for delivery in await session.scalars(
            queued.where(Delivery.status == DeliveryStatus.PENDING).with_for_update()
        ):
            cache._pending[(by_id[delivery.contact_id], delivery.target)] = delivery
        return cache

    @classmethod
    async def memberships_of(
        cls, session: AsyncSession, contacts: Iterable[Contact]
    ) -> "RoundCache":
        """A cache of only these contacts' segment memberships."""
        cache = cls(RoundKeys())
        by_id = {contact.id: contact for contact in contacts}
        for contact in by_id.values():
            cache._members[contact] = set()
        await cache._load_memberships(session, by_id)
        return cache

    async def _load_memberships(self, session: AsyncSession, by_id: dict[int, Contact]) -> None:
        for contact_id, segment_id in await session.execute(
            select(SegmentMember.contact_id, SegmentMember.segment_id).where(
                SegmentMember.contact_id.in_(by_id)
            )
        ):
            self._members[by_id[contact_id]].add(segment_id)

    def _index(self, contact: Contact) -> None:
        self._members.setdefault(contact, set())
        if contact.hubspot_id is not None:
            self.contacts[contact.hubspot_id] = contact
        if contact.salesforce_id is not None:
            self._by_salesforce_id[contact.salesforce_id] = contact
        if contact.email is not None and contact.merged_into_id is None:
            self._by_email[contact.email].append(contact)

    def serves(self, event: InboxEvent) -> bool:
        return event.id in self.keys.hubspot_ids or event.id in self.keys.salesforce_records

    def covers(self, contact: Contact) -> bool:
        return contact in self._members

    # -- Salesforce notifications ---------------------------------------------------------------

    def match_salesforce_record(self, record_id: str, email: str | None) -> Contact | None:
        """`salesforce_events.match_contact` in memory: by link first, then by email."""
        linked = self._by_salesforce_id.get(record_id)
        normalised = normalise_email(email)
        if linked is not None or normalised is None:
            return linked
        candidates = self._by_email.get(normalised)
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c.hubspot_id is None, c.id))

    def remember(self, contact: Contact, previous_salesforce_id: str | None) -> None:
        """Keep the indexes right after a notification created or relinked a contact."""
        if previous_salesforce_id not in (None, contact.salesforce_id):
            self._by_salesforce_id.pop(previous_salesforce_id, None)
        if not self.covers(contact):
            self._index(contact)
        elif contact.salesforce_id is not None:
            self._by_salesforce_id[contact.salesforce_id] = contact

    def is_member(self, contact: Contact, segment_id: int | None) -> bool:
        return segment_id is not None and segment_id in self._members[contact]

    # -- memberships and deliveries ---------------------------------------------------------------

    def refresh_memberships(
        self, contact: Contact, segments: list[ActiveSegment]
    ) -> tuple[set[int], set[int]]:
        """`segments.refresh_memberships` in memory; the rows are written by `write`."""
        before = self._members[contact]
        joined, left = membership_change(before, contact.property_values(), segments)
        for segment_id in joined:
            self._record(segment_id, contact, self._joined, self._left, 1)
        for segment_id in left:
            self._record(segment_id, contact, self._left, self._joined, -1)
        after = (before - left) | joined
        self._members[contact] = after
        return before, after

    def _record(
        self,
        segment_id: int,
        contact: Contact,
        into: set[tuple[int, Contact]],
        undo: set[tuple[int, Contact]],
        step: int,
    ) -> None:
        key = (segment_id, contact)
        if key in undo:  # joined and left again within the round: nothing to write
            undo.discard(key)
        else:
            into.add(key)
        self._size_steps[segment_id] += step

    def queued_salesforce_values(self, contact: Contact) -> list[dict[str, Any]]:
        """The values of the contact's queued Salesforce deliveries, oldest first."""
        pending = self._pending.get((contact, Target.SALESFORCE))
        return [*self._in_flight[contact], *([pending.values] if pending else [])]

    def enqueue(
        self,
        session: AsyncSession,
        target: Target,
        contact: Contact,
        values: dict[str, Any],
        received_at: datetime,
        source_event: str | None,
    ) -> None:
        """`outbox.enqueue`, on the pending delivery locked by `load`."""
        pending = self._pending.get((contact, target))
        if pending is None:
            pending = new_delivery(target, contact, values, received_at, source_event)
            session.add(pending)
            self._pending[(contact, target)] = pending
        else:
            coalesce(pending, values, received_at, source_event)

    async def write(self, session: AsyncSession) -> None:
        """Write the round's changes (memberships after everything else)."""
        await session.flush()
        if self._joined:
            await session.execute(
                insert_ignoring_conflicts(session, SegmentMember),
                sorted(
                    ({"segment_id": s, "contact_id": c.id} for s, c in self._joined),
                    key=lambda row: (row["segment_id"], row["contact_id"]),
                ),
            )
        for segment_id, contact in sorted(self._left, key=lambda key: (key[0], key[1].id)):
            await session.execute(
                delete(SegmentMember).where(
                    SegmentMember.segment_id == segment_id, SegmentMember.contact_id == contact.id
                )
            )
        await add_to_sizes(session, self._size_steps)
        self._joined.clear()
        self._left.clear()
        self._size_steps.clear()
