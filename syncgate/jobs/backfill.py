"""HubSpot backfill: page through every HubSpot contact into the mirror; forwards nothing.

Each page is one transaction: the page's contacts are upserted in bulk (a contact first seen from
Salesforce is adopted by email instead of duplicated) and their segment memberships rebuilt in
SQL, so membership is exact page by page. The next page is read while this one is written.
"""

import asyncio
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.db import transaction
from syncgate.jobs.models import Job
from syncgate.platforms.hubspot.client import HubSpotClient, HubSpotContact
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import apply_read, normalise_email
from syncgate.sync.filters import parse_filter
from syncgate.sync.mapping import load_mappings
from syncgate.sync.models import Segment, SegmentStatus
from syncgate.sync.segments import (
    ActiveSegment,
    active_segments,
    add_to_sizes,
    filter_properties,
    rebuild_members,
    recompute_membership,
)

PAGES_PER_CHUNK = 50
PAGE_SIZE = 100  # HubSpot's largest page


async def backfill_chunk(
    factory: async_sessionmaker[AsyncSession], client: HubSpotClient | None, job_id: int
) -> bool:
    """Store the next pages of HubSpot contacts; returns True after the last one."""
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
        segments = await active_segments(session)
    if cursor.get("phase") == "segments":  # a job an earlier version left to finish this way
        await _recompute_segments(factory)
        return True

    after: str | None = cursor.get("after")
    reading = asyncio.ensure_future(client.list_contacts(properties, after, PAGE_SIZE))
    try:
        for page in range(PAGES_PER_CHUNK):
            contacts, after = await reading
            if after is not None and page + 1 < PAGES_PER_CHUNK:
                reading = asyncio.ensure_future(client.list_contacts(properties, after, PAGE_SIZE))
            async with transaction(factory) as session:
                await store_page(session, contacts, segments)
                job = await session.get(Job, job_id)
                assert job is not None
                job.succeeded += len(contacts)
                job.total = job.succeeded + job.skipped + job.failed
                job.cursor = {"after": after} if after else {}
            if after is None:
                return True
        return False
    finally:
        reading.cancel()  # a page read ahead for a chunk that failed is read again next time


async def store_page(
    session: AsyncSession, contacts: Sequence[HubSpotContact], segments: list[ActiveSegment]
) -> None:
    """Mirror one page of HubSpot contacts and rebuild their segment memberships."""
    live = [c for c in contacts if not c.archived]
    if not live:
        return
    connection = await session.connection()
    emails = {e for c in live if (e := normalise_email(c.properties.get("email")))}
    batch = await ContactBatch.load(
        connection, segments, hubspot_ids=[c.id for c in live], emails=emails
    )
    new = []
    for remote in live:
        if remote.id in batch.by_hubspot_id:
            continue
        email = normalise_email(remote.properties.get("email"))
        orphan = next((c for c in batch.with_email(email) if c.hubspot_id is None), None)
        if orphan is None:
            new.append(remote.id)
        else:
            orphan.hubspot_id = remote.id
            batch.hubspot_linked(orphan)
    await batch.create_hubspot_contacts(connection, new)
    for remote in live:
        apply_read(batch.by_hubspot_id[remote.id], remote.properties, remote.updated_at_ms)
    await batch.write(connection)
    ids = sorted(batch.by_hubspot_id[remote.id].id or 0 for remote in live)
    steps = {}
    for segment in segments:
        inserted, deleted = await rebuild_members(connection, segment.id, segment.filter, ids)
        steps[segment.id] = inserted - deleted
    await add_to_sizes(connection, steps)


async def _recompute_segments(factory: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(factory) as session:
        segments = (
            await session.scalars(select(Segment).where(Segment.status == SegmentStatus.PROCESSING))
        ).all()
        for segment in segments:
            if segment.filter is not None:
                await recompute_membership(session, segment, parse_filter(segment.filter))
