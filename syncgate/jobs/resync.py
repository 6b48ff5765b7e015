"""Segment resync: every member that passes the gate is synced in full to Salesforce."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.db import transaction
from syncgate.delivery.models import Target
from syncgate.delivery.outbox import enqueue
from syncgate.jobs.models import Job
from syncgate.models import utc_now
from syncgate.sync.decisions import add_decision, count_decisions
from syncgate.sync.gate import (
    Decision,
    Direction,
    HubSpotChange,
    Membership,
    Outcome,
    gate_hubspot_change,
)
from syncgate.sync.mapping import load_mappings
from syncgate.sync.models import Contact, Segment, SegmentMember
from syncgate.sync.preferences import load_settings
from syncgate.sync.segments import is_member

CHUNK = 200
PASSED = (Decision.FORWARDED, Decision.SKIPPED_NO_CHANGE)


async def resync_chunk(factory: async_sessionmaker[AsyncSession], job_id: int) -> bool:
    """Gate and queue the next members; returns True when every member has been seen."""
    recorded: list[tuple[Direction, Outcome]] = []
    async with transaction(factory) as session:
        job = await session.get(Job, job_id)
        assert job is not None
        segment = await session.get(Segment, job.params["segment_id"])
        if segment is None:
            raise LookupError(f"segment {job.params['segment_id']} was deleted")
        if not job.cursor:
            job.total = segment.size
        after = int(job.cursor.get("after", 0))
        settings = await load_settings(session)
        mappings = await load_mappings(session)
        members = (
            await session.scalars(
                select(Contact)
                .join(SegmentMember, SegmentMember.contact_id == Contact.id)
                .where(SegmentMember.segment_id == segment.id, Contact.id > after)
                .order_by(Contact.id)
                .limit(CHUNK)
            )
        ).all()
        inclusion = settings.inclusion_segment_id
        received = utc_now()
        for contact in members:
            member = await is_member(session, contact, inclusion)
            if contact.hubspot_deleted_at is not None:
                outcome = Outcome(Decision.IGNORED, "deleted in HubSpot")
            else:
                change = HubSpotChange(
                    changed=frozenset(),
                    properties=contact.property_values(),
                    salesforce_object=contact.salesforce_object or settings.new_contacts_as,
                    linked=contact.salesforce_id is not None,
                    salesforce_values=contact.salesforce_values or {},
                    full=True,
                )
                outcome = gate_hubspot_change(change, Membership(inclusion, member), mappings)
            add_decision(
                session, Direction.HUBSPOT_TO_SALESFORCE, outcome, contact, f"job:{job_id}"
            )
            recorded.append((Direction.HUBSPOT_TO_SALESFORCE, outcome))
            if outcome.queues_delivery:
                await enqueue(
                    session,
                    target=Target.SALESFORCE,
                    contact=contact,
                    values=outcome.values,
                    received_at=received,
                    source_event=f"job:{job_id}",
                )
            if outcome.decision in PASSED:
                job.succeeded += 1
            else:
                job.skipped += 1
        if members:
            job.cursor = {"after": members[-1].id}
        job.total = max(job.total, job.succeeded + job.skipped + job.failed)
        finished = len(members) < CHUNK
    count_decisions(recorded)
    return finished
