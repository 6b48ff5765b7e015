"""Import from Salesforce: HubSpot contacts get only the email, unless the gate allows more.

HubSpot's documented behaviour (reference/hubspot.md §4.4): "only the lead's or contact's email
address will be synced over ... at the time of the import"; contacts in the inclusion segment
(or every contact, with no segment) then get the remaining mapped fields.
"""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.db import transaction
from syncgate.delivery.models import Target
from syncgate.delivery.outbox import enqueue
from syncgate.jobs.models import Job
from syncgate.models import utc_now
from syncgate.platforms.salesforce.client import SalesforceClient
from syncgate.sync.contacts import normalise_email
from syncgate.sync.decisions import add_decision, count_decisions
from syncgate.sync.gate import Decision, Direction, Membership, Outcome, salesforce_field
from syncgate.sync.mapping import Mapping as FieldMapping
from syncgate.sync.mapping import load_mappings
from syncgate.sync.models import Contact
from syncgate.sync.preferences import load_settings
from syncgate.sync.salesforce_events import link_record, match_contact
from syncgate.sync.salesforce_gate import SalesforceChange, gate_salesforce_change
from syncgate.sync.segments import is_member

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

    recorded: list[tuple[Direction, Outcome]] = []
    async with transaction(factory) as session:
        job = await session.get(Job, job_id)
        assert job is not None
        settings = await load_settings(session)
        inclusion = settings.inclusion_segment_id
        for record_id in chunk:
            record = by_id15.get(record_id[:15])
            email = normalise_email(str(record.values.get("Email") or "")) if record else None
            if record is None or email is None:
                job.skipped += 1
                continue
            values = {k: None if v is None else str(v) for k, v in record.values.items()}
            contact = await match_contact(session, record.id, email)
            if contact is None:
                contact = Contact(email=email, properties=[], salesforce_values={})
                session.add(contact)
            known_in_hubspot = contact.hubspot_id is not None
            member = await is_member(session, contact, inclusion)
            link_record(contact, object_type, record.id, record.last_modified_ms)
            contact.salesforce_values = values
            contact.salesforce_modified_ms = record.last_modified_ms
            await session.flush()
            outcome = _import_outcome(
                SalesforceChange(
                    object_type=object_type,
                    fields=values,
                    previous=None,
                    hubspot_properties=contact.property_values(),
                    hubspot_changed_at={},
                    modified_ms=record.last_modified_ms,
                    creation=True,
                    hubspot_contact_known=known_in_hubspot,
                    create_allowed=True,
                ),
                Membership(inclusion, member),
                email,
                mappings=mappings,
            )
            add_decision(
                session, Direction.SALESFORCE_TO_HUBSPOT, outcome, contact, f"job:{job_id}"
            )
            recorded.append((Direction.SALESFORCE_TO_HUBSPOT, outcome))
            if outcome.values:
                await enqueue(
                    session,
                    target=Target.HUBSPOT,
                    contact=contact,
                    values=outcome.values,
                    received_at=utc_now(),
                    source_event=f"job:{job_id}",
                )
            job.succeeded += 1
        job.total = len(ids)
        job.cursor = {"offset": offset + len(chunk)}
        finished = offset + len(chunk) >= len(ids)
    count_decisions(recorded)
    return finished


def _import_outcome(
    change: SalesforceChange,
    membership: Membership,
    email: str,
    *,
    mappings: Sequence[FieldMapping],
) -> Outcome:
    full = gate_salesforce_change(change, Membership(None), mappings)
    if membership.allows_sync:
        return full
    if change.hubspot_contact_known:
        return Outcome(
            Decision.SKIPPED_NOT_IN_SEGMENT,
            "imported: outside the inclusion segment, so no field is synced",
        )
    return Outcome(
        Decision.CREATED_OUTSIDE_SEGMENT,
        "imported with only the email: outside the inclusion segment the other fields stay blank",
        {"email": email},
    )
