"""The worker step that advances jobs one chunk at a time, saving progress after each chunk."""

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.db import transaction
from syncgate.delivery.retry import retry_delay
from syncgate.jobs.backfill import backfill_chunk
from syncgate.jobs.imports import import_chunk
from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.jobs.resync import resync_chunk
from syncgate.logging import log_context
from syncgate.models import utc_now
from syncgate.platforms.hubspot.client import HubSpotClient
from syncgate.platforms.hubspot.client import TransientError as HubSpotTransient
from syncgate.platforms.salesforce.client import SalesforceClient
from syncgate.platforms.salesforce.client import TransientError as SalesforceTransient

log = logging.getLogger("syncgate.jobs")

# A chunk takes seconds; a job whose worker died is picked up again after this.
LEASE = timedelta(seconds=120)

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
        with log_context(job_id=job_id, job_kind=kind):
            try:
                finished = await self._chunk(kind)(job_id)
            except (HubSpotTransient, SalesforceTransient) as error:
                attempt = self.retries[job_id] = self.retries.get(job_id, 0) + 1
                log.warning("job paused after a transient error: %s", error)
                await self._update(
                    job_id,
                    lease_until=utc_now() + retry_delay(self.config, attempt, error.retry_after),
                )
                return 1
            except Exception as error:
                log.exception("job failed")
                await self._update(
                    job_id,
                    status=JobStatus.FAILED,
                    error=f"{type(error).__name__}: {error}"[:2000],
                    finished_at=utc_now(),
                    lease_until=None,
                )
                return 1
        self.retries.pop(job_id, None)
        if finished:
            await self._update(
                job_id, status=JobStatus.DONE, finished_at=utc_now(), lease_until=None
            )
        else:
            await self._update(job_id, lease_until=None)
        return 1

    async def _update(self, job_id: int, **values: object) -> None:
        async with transaction(self.session_factory) as session:
            job = await session.get(Job, job_id)
            if job is not None:
                for key, value in values.items():
                    setattr(job, key, value)
