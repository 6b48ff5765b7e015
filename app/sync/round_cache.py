"""What the events of one processing round share, read in a few queries up front.

Processing event by event costs a dozen statements each (contact, memberships, queued
deliveries, writes). A round instead locks and loads its contacts, their segment memberships
and their queued Salesforce deliveries at once, works on them in memory, and leaves the writes
to one flush at the end, where SQLAlchemy batches them per table.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import insert_ignoring_conflicts
from app.delivery.models import Delivery, DeliveryStatus, Target
from app.delivery.outbox import coalesce, new_delivery
from app.sync.models import Contact, SegmentMember
from app.sync.segments import ActiveSegment, add_to_sizes, membership_change


class RoundCache:
    def __init__(self) -> None:
        self.contacts: dict[str, Contact] = {}
        self._members: dict[int, set[int]] = {}
        # Per contact, its Salesforce deliveries that are still to be written: the in-flight
        # ones (read only) and the pending one (locked, coalesced into), oldest first.
        self._in_flight: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self._pending: dict[int, Delivery] = {}
        self._joined: set[tuple[int, int]] = set()
        self._left: set[tuple[int, int]] = set()
        self._size_steps: dict[int, int] = defaultdict(int)

    @classmethod
    async def load(cls, session: AsyncSession, hubspot_ids: Iterable[str]) -> "RoundCache":
        """Lock and load these contacts (created when new) with what the round needs of them."""
        cache = cls()
        wanted = sorted(set(hubspot_ids))
        if not wanted:
            return cache
        found = await session.scalars(
            select(Contact)
            .where(Contact.hubspot_id.in_(wanted))
            .order_by(Contact.id)  # one lock order for every worker: no deadlocks
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        cache.contacts = {c.hubspot_id: c for c in found if c.hubspot_id is not None}
        created = [
            Contact(hubspot_id=hubspot_id, properties=[], salesforce_values={})
            for hubspot_id in wanted
            if hubspot_id not in cache.contacts
        ]
        session.add_all(created)
        await session.flush()
        cache.contacts.update((c.hubspot_id, c) for c in created if c.hubspot_id is not None)
        ids = [c.id for c in cache.contacts.values()]
        cache._members = {contact_id: set() for contact_id in ids}
        for contact_id, segment_id in await session.execute(
            select(SegmentMember.contact_id, SegmentMember.segment_id).where(
                SegmentMember.contact_id.in_(ids)
            )
        ):
            cache._members[contact_id].add(segment_id)
        queued = select(Delivery).where(
            Delivery.contact_id.in_(ids), Delivery.target == Target.SALESFORCE
        )
        for delivery in await session.scalars(
            queued.where(Delivery.status == DeliveryStatus.IN_FLIGHT).order_by(Delivery.id)
        ):
            cache._in_flight[delivery.contact_id].append(delivery.values)
        # Locked like `enqueue` does: a worker claiming it waits until this round commits.
        for delivery in await session.scalars(
            queued.where(Delivery.status == DeliveryStatus.PENDING).with_for_update()
        ):
            cache._pending[delivery.contact_id] = delivery
        return cache

    def covers(self, contact: Contact) -> bool:
        return contact.id in self._members

    def refresh_memberships(
        self, contact: Contact, segments: list[ActiveSegment]
    ) -> tuple[set[int], set[int]]:
        """`segments.refresh_memberships` in memory; the rows are written by `write`."""
        before = self._members[contact.id]
        joined, left = membership_change(before, contact.property_values(), segments)
        for segment_id in joined:
            self._record(segment_id, contact.id, self._joined, self._left, 1)
        for segment_id in left:
            self._record(segment_id, contact.id, self._left, self._joined, -1)
        after = (before - left) | joined
        self._members[contact.id] = after
        return before, after

    def _record(
        self,
        segment_id: int,
        contact_id: int,
        into: set[tuple[int, int]],
        undo: set[tuple[int, int]],
        step: int,
    ) -> None:
        key = (segment_id, contact_id)
        if key in undo:  # joined and left again within the round: nothing to write
            undo.discard(key)
        else:
            into.add(key)
        self._size_steps[segment_id] += step

    def queued_salesforce_values(self, contact: Contact) -> list[dict[str, Any]]:
        """The values of the contact's queued Salesforce deliveries, oldest first."""
        pending = self._pending.get(contact.id)
        return [*self._in_flight[contact.id], *([pending.values] if pending else [])]

    def enqueue_for_salesforce(
        self,
        session: AsyncSession,
        contact: Contact,
        values: dict[str, Any],
        received_at: datetime,
        source_event: str | None,
    ) -> None:
        """`outbox.enqueue` to Salesforce, on the delivery locked by `load`."""
        pending = self._pending.get(contact.id)
        if pending is None:
            pending = new_delivery(Target.SALESFORCE, contact, values, received_at, source_event)
            session.add(pending)
            self._pending[contact.id] = pending
        else:
            coalesce(pending, values, received_at, source_event)

    async def write(self, session: AsyncSession) -> None:
        """Write the membership changes made in memory (the session flushes the rest)."""
        if self._joined:
            await session.execute(
                insert_ignoring_conflicts(session, SegmentMember),
                [{"segment_id": s, "contact_id": c} for s, c in sorted(self._joined)],
            )
        for segment_id, contact_id in sorted(self._left):
            await session.execute(
                delete(SegmentMember).where(
                    SegmentMember.segment_id == segment_id, SegmentMember.contact_id == contact_id
                )
            )
        await add_to_sizes(session, self._size_steps)
        self._joined.clear()
        self._left.clear()
        self._size_steps.clear()
