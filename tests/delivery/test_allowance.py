"""Salesforce's daily API allowance: read from every answer and from /limits; jobs stop at one
share of it, deliveries at a higher one, and both resume when it recovers."""

from datetime import timedelta

from delivery.harness import Env, event
from sqlalchemy import select, update

from syncgate.connections.breaker import Connection, Outcome
from syncgate.connections.models import PlatformStatus
from syncgate.db import transaction
from syncgate.delivery.models import Delivery
from syncgate.delivery.salesforce import SalesforceDeliverer
from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.jobs.runner import JobRunner
from syncgate.models import utc_now
from syncgate.platforms.usage import ApiUsage


async def usage(env: Env) -> tuple[int | None, int | None]:
    async with env.session_factory() as session:
        row = await session.get(PlatformStatus, "salesforce")
        return (row.api_used, row.api_allowed) if row else (None, None)


async def queue_creation(env: Env, email: str) -> None:
    hubspot_id = env.hubspot.add_contact(email=email, lastname="Allowance")
    await env.send(event("contact.creation", hubspot_id))
    await env.process()


def small_org(env: Env, used: int) -> None:
    env.salesforce.daily_api_limit = 1000
    env.salesforce.use_api(used)


async def test_the_probe_at_start_reads_the_allowance_from_limits(env: Env) -> None:
    small_org(env, 250)
    deliverer = SalesforceDeliverer(env.settings, env.session_factory, env.salesforce_client())

    assert await deliverer.probe()

    assert env.salesforce.requests_to("/limits")
    assert await usage(env) == (250, 1000)


async def test_every_answer_updates_the_allowance_from_sforce_limit_info(env: Env) -> None:
    small_org(env, 10)
    await queue_creation(env, "first@example.com")

    await env.deliver()

    # The lookups (Lead, Contact) and the create each counted: the last answer said 13.
    assert await usage(env) == (13, 1000) == (env.salesforce.api_usage, 1000)


async def test_deliveries_stop_at_their_share_and_resume_when_the_allowance_recovers(
    env: Env,
) -> None:
    small_org(env, 947)
    await queue_creation(env, "before@example.com")
    await env.deliver()  # two lookups and the create: 950 of 1000 used
    await queue_creation(env, "after@example.com")
    env.salesforce.clear_log()

    assert await env.deliver_once() == 0

    assert env.salesforce.requests == []
    async with env.session_factory() as session:
        row = await session.get(PlatformStatus, "salesforce")
        assert row is not None and row.next_probe_at is not None  # to read it again
        assert row.breaker == "closed"
    env.salesforce.use_api(100)  # Salesforce's rolling 24 hours moved on
    async with transaction(env.session_factory) as session:
        await session.execute(
            update(PlatformStatus).values(next_probe_at=utc_now() - timedelta(seconds=1))
        )
    assert await env.deliver_once() == 0  # the probe reads /limits again
    assert await usage(env) == (100, 1000)
    assert await env.deliver() == 1
    assert env.salesforce.find_by_email("after@example.com")


async def test_deliveries_queued_by_jobs_wait_from_the_jobs_share(env: Env) -> None:
    small_org(env, 800)
    await queue_creation(env, "webhook@example.com")
    await queue_creation(env, "resync@example.com")
    async with transaction(env.session_factory) as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.values["email"].as_string() == "resync@example.com")
            .values(source_event="job:7")
        )
    await Connection(env.settings, env.session_factory, "salesforce").record(
        Outcome.NONE, usage=ApiUsage(800, 1000, utc_now())
    )

    await env.deliver()

    by_email = {d.values["email"]: d.status for d in await env.deliveries()}
    assert by_email == {"webhook@example.com": "done", "resync@example.com": "pending"}


async def test_jobs_wait_while_the_allowance_is_past_their_share(env: Env) -> None:
    record_id = env.salesforce.add_record("Lead", LastName="Imp", Company="X", Email="i@x.io")
    async with transaction(env.session_factory) as session:
        session.add(
            Job(kind=JobKind.SALESFORCE_IMPORT, params={"object": "Lead", "ids": [record_id]})
        )
    connection = Connection(env.settings, env.session_factory, "salesforce")
    await connection.record(Outcome.NONE, usage=ApiUsage(760, 1000, utc_now()))
    runner = JobRunner(env.settings, env.session_factory, None, env.salesforce_client())

    assert await runner.run_once() == 0

    async with env.session_factory() as session:
        job = await session.scalar(select(Job))
        assert job is not None and job.succeeded == 0 and job.lease_until is not None
    assert env.salesforce.requests == []
    await connection.record(Outcome.NONE, usage=ApiUsage(500, 1000, utc_now()))
    async with transaction(env.session_factory) as session:
        await session.execute(update(Job).values(lease_until=None))

    assert await runner.run_once() == 1

    async with env.session_factory() as session:
        job = await session.scalar(select(Job))
        assert job is not None and (job.status, job.succeeded) == (JobStatus.DONE, 1)
