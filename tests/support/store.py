"""Seeding the contact mirror in tests, through the same batch writes the service uses."""

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import apply_properties


async def upsert_hubspot_contact(
    session: AsyncSession, hubspot_id: str, values: Mapping[str, str | None], changed_at_ms: int
) -> int:
    """Find or create the mirror of a HubSpot contact, apply property values to it, return its
    id. Segment memberships are left alone: tests create their segments afterwards."""
    connection = await session.connection()
    batch = await ContactBatch.load(connection, [], hubspot_ids=[hubspot_id])
    await batch.create_hubspot_contacts(connection, [hubspot_id])
    contact = batch.by_hubspot_id[hubspot_id]
    apply_properties(contact, values, changed_at_ms)
    await batch.write(connection)
    assert contact.id is not None
    return contact.id
