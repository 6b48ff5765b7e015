"""HubSpot backfill: page through every HubSpot contact into the mirror; forwards nothing.

Segment membership is then exact for contacts that existed before syncgate: once the last page
is stored, every active segment is recomputed in SQL (its status reads `processing` meanwhile).
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.db import transaction
from syncgate.jobs.models import Job
from syncgate.platforms.hubspot.client import HubSpotClient, HubSpotContact
from syncgate.sync.contacts import apply_properties, normalise_email
from syncgate.sync.filters import parse_filter
from syncgate.sync.mapping import load_mappings
from syncgate.sync.models import Contact, Segment, SegmentStatus
from syncgate.sync.segments import (
    filter_properties,
    mark_active_segments_processing,
    recompute_membership,
)

PAGES_PER_CHUNK = 5


async def backfill_chunk(
    factory: async_sessionmaker[AsyncSession], client: HubSpotClient | None, job_id: int
) -> bool:
    """Store the next pages of HubSpot contacts; returns True once segments are recomputed."""
    if client is None:
        raise RuntimeError("no HubSpot API credentials are configured")
    async with factory() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        cursor = dict(job.cursor)
        mappings = await load_mappings(session)
        properties = sorted(
            {"email", *(m.hubspot_property for m in mappings), *await filter_properties(session)}
        )
    if cursor.get("phase") == "segments":
        await _recompute_segments(factory)
        return True

    after: str | None = cursor.get("after")
    for _ in range(PAGES_PER_CHUNK):
        contacts, after = await client.list_contacts(properties, after=after, limit=100)
        async with transaction(factory) as session:
            await store_page(session, contacts)
            job = await session.get(Job, job_id)
            assert job is not None
            job.succeeded += len(contacts)
            job.total = job.succeeded + job.skipped + job.failed
            job.cursor = {"after": after} if after else {"phase": "segments"}
            if after is None:
                await mark_active_segments_processing(session)
        if after is None:
            break
    return False


async def store_page(session: AsyncSession, contacts: list[HubSpotContact]) -> None:
    """Mirror one page of HubSpot contacts; a contact first seen from Salesforce is adopted by
    email instead of duplicated."""
    live = [c for c in contacts if not c.archived]
    ids = [c.id for c in live]
    existing = {
        c.hubspot_id: c
        for c in (await session.scalars(select(Contact).where(Contact.hubspot_id.in_(ids)))).all()
    }
    emails = {normalise_email(c.properties.get("email")) for c in live} - {None}
    orphans = {
        c.email: c
        for c in (
            await session.scalars(
                select(Contact).where(Contact.hubspot_id.is_(None), Contact.email.in_(emails))
            )
        ).all()
    }
    for remote in live:
        contact = existing.get(remote.id)
        if contact is None:
            contact = orphans.pop(normalise_email(remote.properties.get("email")), None)
            if contact is None:
                contact = Contact(properties=[], salesforce_values={})
                session.add(contact)
            contact.hubspot_id = remote.id
        apply_properties(contact, remote.properties, remote.updated_at_ms)
    await session.flush()


async def _recompute_segments(factory: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(factory) as session:
        segments = (
            await session.scalars(select(Segment).where(Segment.status == SegmentStatus.PROCESSING))
        ).all()
        for segment in segments:
            if segment.filter is not None:
                await recompute_membership(session, segment, parse_filter(segment.filter))
