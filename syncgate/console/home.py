"""Limit what syncs: the inclusion segment, and resync with its progress."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from syncgate.api import jobs as jobs_api
from syncgate.console import auth
from syncgate.console.web import ConsoleRoute, Db, redirect, render, validation_messages
from syncgate.errors import AppError, Conflict, NotFound
from syncgate.jobs.models import JobKind, JobStatus
from syncgate.sync import preferences, segments
from syncgate.sync.models import Segment, SegmentType
from syncgate.sync.schemas import InclusionSegment, RowId

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

NEW_SEGMENT = "__new__"
NOTHING_QUEUED = (
    "Nothing is synced by this change itself: a contact syncs when its data next changes (one "
    "that joins the segment then syncs in full), or when you start a resync."
)


def job_progress(job: jobs_api.JobOut) -> dict[str, Any]:
    """A job's progress for the progress bar, with the same sentence the page shows."""
    processed = job.succeeded + job.skipped + job.failed
    total = max(job.total, processed)
    finished = job.status in (JobStatus.DONE, JobStatus.FAILED)
    percent = 100 if finished and total == 0 else (round(100 * processed / total) if total else 0)
    if job.kind == JobKind.SEGMENT_RESYNC:
        counts = (
            f"{job.succeeded} passed the gate (queued, or already in sync), "
            f"{job.skipped} held back, {job.failed} failed"
        )
        unit = "members"
    else:
        counts = f"{job.succeeded} succeeded, {job.skipped} skipped, {job.failed} failed"
        unit = "records"
    state = {
        JobStatus.QUEUED: "Queued",
        JobStatus.RUNNING: "Running",
        JobStatus.DONE: "Done",
        JobStatus.FAILED: "Failed",
    }[JobStatus(job.status)]
    if job.status == JobStatus.QUEUED:
        text = "Queued: waiting for a worker to start it."
    else:
        text = f"{state}: {processed} of {total} {unit} processed ({percent}%) — {counts}."
    if job.status == JobStatus.FAILED and job.error:
        text += f" Error: {job.error}"
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "total": total,
        "processed": processed,
        "succeeded": job.succeeded,
        "skipped": job.skipped,
        "failed": job.failed,
        "percent": percent,
        "finished": finished,
        "text": text,
    }


async def progress_of(db: Db, job_id: int | None) -> dict[str, Any] | None:
    if job_id is None:
        return None
    try:
        return job_progress(await jobs_api.get_job(job_id, db))
    except NotFound:
        return None


async def _page(
    request: Request,
    session: auth.Ticket,
    db: Db,
    *,
    job_id: int | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    settings = await preferences.load_settings(db)
    all_segments = list(await segments.list_segments(db))
    current = next((s for s in all_segments if s.id == settings.inclusion_segment_id), None)
    progress = await progress_of(db, job_id)
    return render(
        request,
        "home.html",
        {
            "title": "Limit what syncs",
            "active": [s for s in all_segments if s.type == SegmentType.ACTIVE],
            "static": [s for s in all_segments if s.type == SegmentType.STATIC],
            "current": current,
            "progress": progress,
            "error": error,
            "new_segment": NEW_SEGMENT,
        },
        session=session,
        status=status,
        page="sync",
    )


@router.get("")
async def home(
    request: Request,
    session: auth.SessionTicket,
    db: Db,
    job: Annotated[RowId | None, Query()] = None,
) -> Response:
    return await _page(request, session, db, job_id=job)


@router.post("/inclusion-segment")
async def choose_inclusion_segment(request: Request, posted: auth.PostedForm, db: Db) -> Response:
    choice = posted.text("segment_id").strip()
    if choice == NEW_SEGMENT:
        return redirect(request, "/console/segments/new?for=inclusion")
    try:
        body = InclusionSegment.model_validate({"segment_id": choice or None})
    except ValidationError as error:
        message = "; ".join(validation_messages(error, {"segment_id": "Segment"}))
        return await _page(request, posted.session, db, error=message, status=422)
    try:
        async with db.begin_nested():
            row = await preferences.set_inclusion_segment(db, body.segment_id)
    except AppError as error:
        return await _page(request, posted.session, db, error=error.message, status=422)
    if row.inclusion_segment_id is None:
        message = f"No inclusion segment: every contact may sync. {NOTHING_QUEUED}"
    else:
        segment = await segments.get_segment(db, row.inclusion_segment_id)
        message = (
            f"Only contacts in “{segment.name}” sync from now on ({segment.size} now). "
            f"{NOTHING_QUEUED}"
        )
    return redirect(request, "/console", message)


@router.post("/segments/{segment_id}/resync")
async def resync(request: Request, segment_id: RowId, posted: auth.PostedForm, db: Db) -> Response:
    back = "/console" if posted.text("back") != "segment" else f"/console/segments/{segment_id}"
    try:
        created = await jobs_api.resync_segment(segment_id, db, request.app.state.settings)
    except Conflict as error:
        return redirect(request, back, error.message, kind="error")
    segment = await db.get(Segment, segment_id)
    name = segment.name if segment else str(segment_id)
    return redirect(
        request,
        f"{back}?job={created.job_id}#progress",
        f"Resync of “{name}” started (job {created.job_id}): every member that passes the gate "
        "is synced to Salesforce.",
    )


@router.get("/jobs/{job_id}")
async def job_status(request: Request, job_id: RowId, db: Db) -> Response:
    """Progress of a job for the progress bar's script (signed-in operators only)."""
    if await auth.current_session(request, db) is None:
        return JSONResponse(
            {"code": "unauthorized", "message": "sign in to the console first"}, status_code=401
        )
    try:
        job = await jobs_api.get_job(job_id, db)
    except NotFound as error:
        return JSONResponse({"code": error.code, "message": error.message}, status_code=404)
    return JSONResponse(job_progress(job))
