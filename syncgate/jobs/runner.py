"""The worker step that advances jobs one chunk at a time, saving progress after each chunk."""

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.connections.breaker import Connection, Outcome
from syncgate.db import transaction
from syncgate.delivery.retry import retry_delay
from syncgate.jobs.backfill import backfill_chunk
from syncgate.jobs.imports import import_chunk
from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.jobs.resync import resync_chunk
from syncgate.logging import log_context
from syncgate.models import utc_now
from syncgate.platforms.errors import PlatformError
from syncgate.platforms.hubspot.client import HubSpotClient
from syncgate.platforms.salesforce.client import SalesforceClient

log = logging.getLogger("syncgate.jobs")

# A chunk takes seconds; a job whose worker died is picked up again after this.
LEASE = timedelta(seconds=120)
# The platform whose API a job's work spends (what it reads, or what its deliveries write).
JOB_PLATFORMS = {
    JobKind.SEGMENT_RESYNC: "salesforce",
    JobKind.SALESFORCE_IMPORT: "salesforce",
    JobKind.HUBSPOT_BACKFILL: "hubspot",
}

Chunk = Callable[[int], Awaitable[bool]]


class JobRunner:
    def __init__(
        self,
        config: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        hubspot: HubSpotClient | None,
        salesforce: SalesforceClient | None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.hubspot = hubspot
        self.salesforce = salesforce
        self.clients = {"hubspot": hubspot, "salesforce": salesforce}
        self.connections = {
            platform: Connection(config, session_factory, platform)
            for platform in ("hubspot", "salesforce")
        }
        self.retries: dict[int, int] = {}

    def _chunk(self, kind: str) -> Chunk:
        factory = self.session_factory
        if kind == JobKind.SEGMENT_RESYNC:
            return lambda job_id: resync_chunk(factory, job_id)
        if kind == JobKind.SALESFORCE_IMPORT:
            return lambda job_id: import_chunk(factory, self.salesforce, job_id)
        return lambda job_id: backfill_chunk(factory, self.hubspot, job_id)

    async def _claim(self) -> tuple[int, str] | None:
        async with transaction(self.session_factory) as session:
            now = utc_now()
            job = await session.scalar(
                select(Job)
                .where(
                    Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                    or_(Job.lease_until.is_(None), Job.lease_until < now),
                )
                .order_by(Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job is None:
                return None
            job.status = JobStatus.RUNNING
            job.lease_until = now + LEASE
            return job.id, job.kind

    async def run_once(self) -> int:
        """Advance one job by one chunk; returns 1 when a job was worked on."""
        claimed = await self._claim()
        if claimed is None:
            return 0
        job_id, kind = claimed
        platform = JOB_PLATFORMS[JobKind(kind)]
        connection = self.connections[platform]
        with log_context(job_id=job_id, job_kind=kind):
            if not (await connection.gate(take_probe=False)).jobs:
                # The platform is down or its allowance is past the jobs' share: look again later.
                log.info("job waits: %s is unavailable or past the jobs' API share", platform)
                wait = timedelta(seconds=self.config.breaker_probe_seconds)
                await self._update(job_id, lease_until=utc_now() + wait)
                return 0
            try:
                finished = await self._chunk(kind)(job_id)
            except PlatformError as error:
                if not (error.transient or error.outage):
                    await self._fail(job_id, error)
                    return 1
                attempt = self.retries[job_id] = self.retries.get(job_id, 0) + 1
                log.warning("job paused after a transient error: %s", error)
                outcome = Outcome.OUTAGE if error.outage else Outcome.NONE
                await self._record(connection, platform, outcome, error.message)
                await self._update(
                    job_id,
                    lease_until=utc_now() + retry_delay(self.config, attempt, error.retry_after),
                )
                return 1
            except Exception as error:
                await self._fail(job_id, error)
                return 1
        self.retries.pop(job_id, None)
        if kind != JobKind.SEGMENT_RESYNC:  # a resync only queues deliveries
            await self._record(connection, platform, Outcome.ANSWERED)
        if finished:
            await self._update(
                job_id, status=JobStatus.DONE, finished_at=utc_now(), lease_until=None
            )
        else:
            await self._update(job_id, lease_until=None)
        return 1

    async def _record(
        self, connection: Connection, platform: str, outcome: Outcome, message: str | None = None
    ) -> None:
        client = self.clients[platform]
        await connection.record(outcome, message, client.usage if client else None)

    async def _fail(self, job_id: int, error: Exception) -> None:
        log.exception("job failed")
        await self._update(
            job_id,
            status=JobStatus.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=utc_now(),
            lease_until=None,
        )

    async def _update(self, job_id: int, **values: object) -> None:
        async with transaction(self.session_factory) as session:
            job = await session.get(Job, job_id)
            if job is not None:
                for key, value in values.items():
                    setattr(job, key, value)
