"""Jobs (§6): segment resync, Salesforce import, HubSpot backfill, and their progress."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from syncgate.api.deps import AdminDep, SessionDep, SettingsDep
from syncgate.config import Settings
from syncgate.errors import Conflict, NotFound, error_responses
from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.platforms.connections import (
    HUBSPOT,
    SALESFORCE,
    how_to_connect,
    is_connected,
    not_connected,
)
from syncgate.sync.schemas import RowId
from syncgate.sync.segments import get_segment

router = APIRouter(
    prefix="/api", tags=["jobs"], dependencies=[AdminDep], responses=error_responses(401)
)

SalesforceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")]


class JobCreated(BaseModel):
    job_id: int


class JobOut(BaseModel):
    id: int
    kind: JobKind
    status: JobStatus
    total: int
    succeeded: int
    skipped: int
    failed: int
    error: str | None
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ImportIn(BaseModel):
    object: Literal["Lead", "Contact"]
    ids: Annotated[list[SalesforceId], Field(min_length=1, max_length=50_000)]


def _require(settings: Settings, platform: str) -> None:
    if not is_connected(settings, platform):
        raise Conflict(
            "not_configured",
            f"{not_connected(platform)}: no API credentials are configured for this job"
            f" ({how_to_connect(platform)})",
        )


async def _queue(session: SessionDep, kind: JobKind, params: dict[str, Any]) -> JobCreated:
    job = Job(kind=kind, params=params, cursor={})
    session.add(job)
    await session.flush()
    return JobCreated(job_id=job.id)


@router.post(
    "/segments/{segment_id}/resync",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404, 409),
)
async def resync_segment(
    segment_id: RowId, session: SessionDep, settings: SettingsDep
) -> JobCreated:
    segment = await get_segment(session, segment_id)
    _require(settings, SALESFORCE)
    return await _queue(session, JobKind.SEGMENT_RESYNC, {"segment_id": segment.id})


@router.post(
    "/imports/salesforce",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(409),
)
async def import_from_salesforce(
    body: ImportIn, session: SessionDep, settings: SettingsDep
) -> JobCreated:
    _require(settings, SALESFORCE)
    ids = list(dict.fromkeys(body.ids))
    return await _queue(session, JobKind.SALESFORCE_IMPORT, {"object": body.object, "ids": ids})


@router.post(
    "/backfill/hubspot",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(409),
)
async def backfill_from_hubspot(session: SessionDep, settings: SettingsDep) -> JobCreated:
    _require(settings, HUBSPOT)
    return await _queue(session, JobKind.HUBSPOT_BACKFILL, {})


@router.get("/jobs/{job_id}", responses=error_responses(404))
async def get_job(job_id: RowId, session: SessionDep) -> JobOut:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return JobOut.model_validate(job, from_attributes=True)
