"""Jobs (§6): segment resync, Salesforce import, HubSpot backfill, and their progress."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from syncgate.api import examples
from syncgate.api.deps import ADMIN_RESPONSES, AdminDep, SessionDep, SettingsDep
from syncgate.api.examples import answers
from syncgate.api.examples import body as request
from syncgate.config import Settings
from syncgate.connections.credentials import (
    HUBSPOT,
    SALESFORCE,
    how_to_connect,
    is_connected,
    not_connected,
)
from syncgate.errors import Conflict, NotFound, error_responses
from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.sync.schemas import RowId
from syncgate.sync.segments import get_segment

router = APIRouter(prefix="/api", tags=["jobs"], dependencies=[AdminDep], responses=ADMIN_RESPONSES)

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
    # 20,000 ids are 440 kB of compact JSON: within the default SYNCGATE_MAX_API_BODY_BYTES.
    ids: Annotated[list[SalesforceId], Field(min_length=1, max_length=20_000)]


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
    summary="Resync a segment's members to Salesforce",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404, 409) | answers(202, examples.JOB_CREATED),
)
async def resync_segment(
    segment_id: RowId, session: SessionDep, settings: SettingsDep
) -> JobCreated:
    """Queues a job that syncs every member that passes the gate to Salesforce; follow it
    at `/api/jobs/{job_id}`. 409 `not_configured` while Salesforce is not connected."""
    segment = await get_segment(session, segment_id)
    _require(settings, SALESFORCE)
    return await _queue(session, JobKind.SEGMENT_RESYNC, {"segment_id": segment.id})


@router.post(
    "/imports/salesforce",
    summary="Import Salesforce Leads or Contacts",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(409) | answers(202, examples.JOB_CREATED),
    openapi_extra=request(examples.IMPORT_IN),
)
async def import_from_salesforce(
    body: ImportIn, session: SessionDep, settings: SettingsDep
) -> JobCreated:
    """Creates HubSpot contacts with only the email, like HubSpot's own import; the other
    mapped fields follow when no inclusion segment is set or the contact is in it.
    409 `not_configured` while Salesforce is not connected."""
    _require(settings, SALESFORCE)
    ids = list(dict.fromkeys(body.ids))
    return await _queue(session, JobKind.SALESFORCE_IMPORT, {"object": body.object, "ids": ids})


@router.post(
    "/backfill/hubspot",
    summary="Read every HubSpot contact into the store",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(409) | answers(202, examples.JOB_CREATED),
)
async def backfill_from_hubspot(session: SessionDep, settings: SettingsDep) -> JobCreated:
    """Mirrors all HubSpot contacts so segment membership is known; forwards nothing.
    409 `not_configured` while HubSpot is not connected."""
    _require(settings, HUBSPOT)
    return await _queue(session, JobKind.HUBSPOT_BACKFILL, {})


@router.get(
    "/jobs/{job_id}",
    summary="Get a job's progress",
    responses=error_responses(404) | answers(200, examples.JOB),
)
async def get_job(job_id: RowId, session: SessionDep) -> JobOut:
    """Status and counts of a resync, import or backfill, advanced a chunk at a time."""
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return JobOut.model_validate(job, from_attributes=True)
