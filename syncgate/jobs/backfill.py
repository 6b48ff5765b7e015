"""HubSpot backfill: page through every HubSpot contact into the mirror; forwards nothing.

Each page is one transaction: the page's contacts are upserted in bulk (a contact first seen from
Salesforce is adopted by email instead of duplicated) and their segment memberships re-evaluated
as a processing round does, so membership is exact page by page. The next page is read while
this one is written.
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
    properties_to_read,
    recompute_membership,
)

PAGES_PER_CHUNK = 50
PAGES_PER_WRITE = 10  # pages written in one transaction, when they are read ahead that far
PAGE_SIZE = 100  # HubSpot's largest page

Page = tuple[list[HubSpotContact], str | None]  # contacts, and the cursor of the next page


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
        segments = await active_segments(session)
        properties = properties_to_read(await load_mappings(session), segments)
    if cursor.get("phase") == "segments":  # a job an earlier version left to finish this way
        await _recompute_segments(factory)
        return True

    pages: asyncio.Queue[Page | Exception] = asyncio.Queue(maxsize=2 * PAGES_PER_WRITE)

    async def read() -> None:
        after: str | None = cursor.get("after")
        try:
            for _ in range(PAGES_PER_CHUNK):
                contacts, after = await client.list_contacts(properties, after, PAGE_SIZE)
                await pages.put((contacts, after))
                if after is None:
                    return
        except Exception as error:  # the writer raises it, after the pages read before it
            await pages.put(error)

    reader = asyncio.ensure_future(read())
    try:
        written = 0
        while written < PAGES_PER_CHUNK:
            batch = [await pages.get()]
            while len(batch) < PAGES_PER_WRITE and not pages.empty():
                batch.append(pages.get_nowait())
            read_pages = [page for page in batch if not isinstance(page, Exception)]
            if read_pages:
                contacts = [contact for page, _ in read_pages for contact in page]
                after = read_pages[-1][1]
                async with transaction(factory) as session:
                    await store_page(session, contacts, segments)
                    job = await session.get(Job, job_id)
                    assert job is not None
                    job.succeeded += len(contacts)
                    job.total = job.succeeded + job.skipped + job.failed
                    job.cursor = {"after": after} if after else {}
                if after is None:
                    return True
            if len(read_pages) < len(batch):
                raise next(page for page in batch if isinstance(page, Exception))
            written += len(batch)
        return False
    finally:
        reader.cancel()  # pages read ahead for a chunk that failed are read again next time


async def store_page(
    session: AsyncSession, contacts: Sequence[HubSpotContact], segments: list[ActiveSegment]
) -> None:
    """Mirror pages of HubSpot contacts and re-evaluate their segment memberships."""
    live = [c for c in contacts if not c.archived]
    if not live:
        return
    connection = await session.connection()
    emails = {c.id: normalise_email(c.properties.get("email")) for c in live}
    batch = await ContactBatch.load(
        connection,
        segments,
        hubspot_ids=emails,
        emails=[email for email in emails.values() if email],
    )
    new = []
    for remote in live:
        if remote.id in batch.by_hubspot_id:
            continue
        orphan = next(
            (c for c in batch.with_email(emails[remote.id]) if c.hubspot_id is None), None
        )
        if orphan is None:
            new.append(remote.id)
        else:
            orphan.hubspot_id = remote.id
            batch.hubspot_linked(orphan)
    await batch.create_hubspot_contacts(connection, new, emails)
    for remote in live:
        contact = batch.by_hubspot_id[remote.id]
        apply_read(contact, remote.properties, remote.updated_at_ms)
        batch.memberships.refresh(contact)
    await batch.write(connection)


async def _recompute_segments(factory: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(factory) as session:
        segments = (
            await session.scalars(select(Segment).where(Segment.status == SegmentStatus.PROCESSING))
        ).all()
        for segment in segments:
            if segment.filter is not None:
                await recompute_membership(session, segment, parse_filter(segment.filter))
