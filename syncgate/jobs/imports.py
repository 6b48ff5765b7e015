"""Import from Salesforce: HubSpot contacts get only the email, unless the gate allows more.

HubSpot's documented behaviour (reference/hubspot.md §4.4): "only the lead's or contact's email
address will be synced over ... at the time of the import"; contacts in the inclusion segment
(or every contact, with no segment) then get the remaining mapped fields.
"""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.db import transaction
from syncgate.delivery.models import Target
from syncgate.jobs.models import Job
from syncgate.models import utc_now
from syncgate.platforms.salesforce.client import SalesforceClient
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import ContactState, link_record, normalise_email
from syncgate.sync.decide.outcomes import Direction, Membership
from syncgate.sync.decide.salesforce_change import import_outcome, salesforce_change
from syncgate.sync.mapping import load_mappings, salesforce_field
from syncgate.sync.preferences import load_settings

CHUNK = 200


async def import_chunk(
    factory: async_sessionmaker[AsyncSession], client: SalesforceClient | None, job_id: int
) -> bool:
    """Import the next records; returns True when every id has been handled."""
    if client is None:
        raise RuntimeError("no Salesforce API credentials are configured")
    async with transaction(factory) as session:
        job = await session.get(Job, job_id)
        assert job is not None
        object_type: str = job.params["object"]
        ids: list[str] = job.params["ids"]
        offset = int(job.cursor.get("offset", 0))
        mappings = await load_mappings(session)
    chunk = ids[offset : offset + CHUNK]
    fields = sorted({f for m in mappings if (f := salesforce_field(m, object_type))} | {"Email"})
    records = await client.get_records(object_type, chunk, fields) if chunk else {}
    by_id15 = {record_id[:15]: record for record_id, record in records.items()}
    found = [by_id15.get(record_id[:15]) for record_id in chunk]

    async with transaction(factory) as session:
        job = await session.get(Job, job_id)
        assert job is not None
        inclusion = (await load_settings(session)).inclusion_segment_id
        connection = await session.connection()
        emails = [normalise_email(str(r.values.get("Email") or "")) if r else None for r in found]
        batch = await ContactBatch.load(
            connection,
            [],
            salesforce_ids=[r.id for r in found if r],
            emails=[e for e in emails if e],
        )
        source = f"job:{job_id}"
        for record, email in zip(found, emails, strict=True):
            if record is None or email is None:
                job.skipped += 1
                continue
            values = {k: None if v is None else str(v) for k, v in record.values.items()}
            contact = batch.match_salesforce_record(record.id, email) or batch.add(
                ContactState(email=email)
            )
            member = batch.memberships.is_member(contact, inclusion)
            previous = contact.salesforce_id
            if link_record(contact, object_type, record.id, record.last_modified_ms):
                contact.salesforce_values = values
                contact.salesforce_modified_ms = record.last_modified_ms
            batch.relinked(contact, previous)
            change = salesforce_change(
                contact,
                object_type=object_type,
                record_id=record.id,
                fields=values,
                modified_ms=record.last_modified_ms,
                create_allowed=True,
                imported=True,
            )
            outcome = import_outcome(change, Membership(inclusion, member), email, mappings)
            batch.decisions.add(Direction.SALESFORCE_TO_HUBSPOT, outcome, contact, source)
            if outcome.queues_delivery:
                batch.outbox.enqueue(Target.HUBSPOT, contact, outcome.values, utc_now(), source)
            job.succeeded += 1
        await batch.write(connection)
        job.total = len(ids)
        job.cursor = {"offset": offset + len(chunk)}
        finished = offset + len(chunk) >= len(ids)
    batch.decisions.count()
    return finished
