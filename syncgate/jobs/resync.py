"""Segment resync: every member that passes the gate is synced in full to Salesforce."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.db import transaction
from syncgate.delivery.models import Target
from syncgate.jobs.models import Job
from syncgate.models import utc_now
from syncgate.sync.batch import ContactBatch
from syncgate.sync.decide.hubspot_change import RESYNC_PASSED, hubspot_change, resync_outcome
from syncgate.sync.decide.outcomes import Direction, Membership
from syncgate.sync.mapping import load_mappings
from syncgate.sync.models import Segment, SegmentMember
from syncgate.sync.preferences import load_settings

CHUNK = 500


async def resync_chunk(factory: async_sessionmaker[AsyncSession], job_id: int) -> bool:
    """Gate and queue the next members; returns True when every member has been seen."""
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
        member_ids = (
            await session.scalars(
                select(SegmentMember.contact_id)
                .where(SegmentMember.segment_id == segment.id, SegmentMember.contact_id > after)
                .order_by(SegmentMember.contact_id)
                .limit(CHUNK)
            )
        ).all()
        connection = await session.connection()
        batch = await ContactBatch.load(connection, [], ids=member_ids)
        inclusion = settings.inclusion_segment_id
        received, source = utc_now(), f"job:{job_id}"
        for contact_id in member_ids:
            contact = batch.by_id.get(contact_id)
            if contact is None:
                continue
            change = hubspot_change(
                contact,
                mappings,
                new_contacts_as=settings.new_contacts_as,
                full=True,
                queued=batch.outbox.queued_salesforce_values(contact),
            )
            membership = Membership(inclusion, batch.memberships.is_member(contact, inclusion))
            outcome = resync_outcome(contact, change, membership, mappings)
            batch.decisions.add(Direction.HUBSPOT_TO_SALESFORCE, outcome, contact, source)
            if outcome.queues_delivery:
                batch.outbox.enqueue(Target.SALESFORCE, contact, outcome.values, received, source)
            if outcome.decision in RESYNC_PASSED:
                job.succeeded += 1
            else:
                job.skipped += 1
        await batch.write(connection)
        if member_ids:
            job.cursor = {"after": member_ids[-1]}
        job.total = max(job.total, job.succeeded + job.skipped + job.failed)
        finished = len(member_ids) < CHUNK
    batch.decisions.count()
    return finished
