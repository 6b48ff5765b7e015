"""Resync and backfill through the real job runner, in process, against the fake platforms."""

from delivery.harness import Env
from sqlalchemy import select, update
from support.store import upsert_hubspot_contact

from syncgate.db import transaction
from syncgate.delivery.models import Delivery, DeliveryStatus, Operation, Target
from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.jobs.runner import JobRunner
from syncgate.sync.models import Contact, Segment, SegmentMember, SegmentType
from syncgate.sync.segments import create_segment

CUSTOMERS = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}


async def run_job(env: Env, kind: JobKind, **params: object) -> Job:
    async with transaction(env.session_factory) as session:
        job = Job(kind=kind, params=params, cursor={})
        session.add(job)
        await session.flush()
        job_id = job.id
    runner = JobRunner(
        env.settings, env.session_factory, env.hubspot_client(), env.salesforce_client()
    )
    while await runner.run_once():
        pass
    async with env.session_factory() as session:
        done = await session.get(Job, job_id)
        assert done is not None
        return done


async def test_backfill_adopts_contacts_seen_in_salesforce_and_keeps_segments_exact(
    env: Env,
) -> None:
    ids = [
        env.hubspot.add_contact(
            email=f"b{n}@example.com", lifecyclestage="customer" if n % 10 == 0 else "lead"
        )
        for n in range(230)  # three pages
    ]
    async with transaction(env.session_factory) as session:
        # A contact a Salesforce notification brought in before the backfill: same person.
        session.add(Contact(email="b7@example.com", salesforce_id="00Q000000000007AAA"))
        segment = await create_segment(session, "Customers", SegmentType.ACTIVE, CUSTOMERS)

    job = await run_job(env, JobKind.HUBSPOT_BACKFILL)

    assert (job.status, job.total, job.succeeded) == (JobStatus.DONE, 230, 230)
    async with env.session_factory() as session:
        contacts = (await session.scalars(select(Contact))).all()
        assert len(contacts) == 230
        adopted = next(c for c in contacts if c.email == "b7@example.com")
        assert (adopted.salesforce_id, adopted.hubspot_id) == ("00Q000000000007AAA", ids[7])
        members = (await session.scalars(select(SegmentMember.contact_id))).all()
        stored = await session.get(Segment, segment.id)
        assert stored is not None and (stored.status, stored.size) == ("ready", 23)
        assert len(members) == 23
    assert env.salesforce.write_calls == 0
    assert await env.deliveries() == []


async def test_a_resync_sends_back_what_a_queued_delivery_would_overwrite(env: Env) -> None:
    async with transaction(env.session_factory) as session:
        contact_id = await upsert_hubspot_contact(
            session, "41", {"email": "rs@example.com", "firstname": "Rosa"}, 1_000
        )
        await session.execute(
            update(Contact)
            .where(Contact.id == contact_id)
            .values(
                salesforce_id="00Q000000000041AAA",
                salesforce_object="Lead",
                salesforce_values={"Email": "rs@example.com", "FirstName": "Rosa"},
            )
        )
        # "Rosalind" is on its way to Salesforce, though HubSpot has "Rosa" again.
        session.add(
            Delivery(
                target=Target.SALESFORCE,
                operation=Operation.UPDATE,
                contact_id=contact_id,
                values={"firstname": "Rosalind"},
                status=DeliveryStatus.IN_FLIGHT,
                history=[],
            )
        )
        segment = await create_segment(
            session, "Everyone", SegmentType.ACTIVE, {"property": "email", "operator": "is_known"}
        )

    job = await run_job(env, JobKind.SEGMENT_RESYNC, segment_id=segment.id)

    assert (job.status, job.succeeded) == (JobStatus.DONE, 1)
    pending = [d for d in await env.deliveries() if d.status == DeliveryStatus.PENDING]
    assert [d.values for d in pending] == [{"firstname": "Rosa"}]
