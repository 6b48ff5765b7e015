"""Segments: list, create and edit with the criteria builder, review, and static members."""

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import Response

from syncgate.api.paging import decode_cursor, encode_cursor
from syncgate.console import auth
from syncgate.console.builder import (
    OPERATORS,
    Builder,
    FilterTextError,
    builder_for,
    canonical,
    parse_filter_text,
    pretty,
)
from syncgate.console.home import NOTHING_QUEUED, progress_of
from syncgate.console.web import (
    ConsoleRoute,
    Db,
    matching,
    plural,
    redirect,
    render,
    validation_messages,
)
from syncgate.errors import AppError, Unprocessable
from syncgate.jobs.models import Job, JobKind, JobStatus
from syncgate.sync import preferences, segments
from syncgate.sync.filters import describe, parse_filter, property_names
from syncgate.sync.mapping import load_mappings
from syncgate.sync.models import Contact, ContactProperty, Segment, SegmentType
from syncgate.sync.schemas import MembersIn, RowId, SegmentIn, SegmentPatch

router = APIRouter(prefix="/console/segments", route_class=ConsoleRoute, include_in_schema=False)

MEMBERS_PAGE = 25
PROPERTY_SUGGESTIONS = 500
FIELD_LABELS = {"name": "Name", "type": "Type", "filter": "Criteria", "emails": "Emails"}
_EMAIL_SPLIT = re.compile(r"[\s,;]+")


def criteria_text(segment: Segment) -> str:
    if segment.type != SegmentType.ACTIVE or segment.filter is None:
        return "—"
    return describe(parse_filter(segment.filter))


@dataclass
class SegmentForm:
    """What the segment form posts (or shows): the filter is kept as the text that was sent."""

    name: str = ""
    type: str = SegmentType.ACTIVE.value
    filter_text: str = ""
    reviewed: str = ""
    make_inclusion: bool = False
    errors: list[str] = field(default_factory=list)

    @classmethod
    def posted(cls, posted: auth.Posted) -> "SegmentForm":
        # The builder's script fills the hidden `filter`; without it, the textarea is the input.
        text = posted.text("filter") or posted.text("filter_json")
        return cls(
            name=posted.text("name").strip(),
            type=posted.text("type", SegmentType.ACTIVE.value),
            filter_text=text,
            reviewed=posted.text("reviewed"),
            make_inclusion=posted.text("make_inclusion") == "on",
        )

    def raw_filter(self) -> Any:
        return parse_filter_text(self.filter_text)


@dataclass
class Preview:
    size: int
    sample: list[Contact]
    columns: list[str]


async def _suggestions(db: Db) -> list[str]:
    """Property names for the builder's suggestions: the mapped ones and those in the store."""
    stored = (
        await db.scalars(
            select(ContactProperty.name)
            .distinct()
            .order_by(ContactProperty.name)
            .limit(PROPERTY_SUGGESTIONS)
        )
    ).all()
    mapped = [m.hubspot_property for m in await load_mappings(db)]
    return sorted({*stored, *mapped})


def _sample_columns(raw: Any) -> list[str]:
    named = sorted(property_names(parse_filter(raw)) - {"email", "firstname", "lastname"})
    return named[:4]


async def _form_page(
    request: Request,
    session: auth.Ticket,
    db: Db,
    form: SegmentForm,
    *,
    segment: Segment | None = None,
    preview: Preview | None = None,
    status: int = 200,
    notice: str | None = None,
    for_inclusion: bool = False,
    job_id: int | None = None,
    after: int | None = None,
) -> Response:
    builder: Builder | None
    try:
        builder = builder_for(form.raw_filter())
    except FilterTextError:
        builder = None
    context = {
        "title": f"Edit “{segment.name}”" if segment else "New segment",
        "segment": segment,
        "form": form,
        "builder": builder,
        "operators": OPERATORS,
        "suggestions": await _suggestions(db),
        "preview": preview,
        "notice": notice,
        "for_inclusion": for_inclusion,
    }
    if segment is not None:
        context.update(await _segment_context(db, segment, after, job_id))
    return render(
        request, "segment_form.html", context, session=session, status=status, page="segments"
    )


async def _segment_context(
    db: Db, segment: Segment, after: int | None, job_id: int | None = None
) -> dict[str, Any]:
    members, last = await segments.members_page(db, segment, MEMBERS_PAGE, after)
    settings = await preferences.load_settings(db)
    if job_id is None:
        # A resync still running for this segment keeps its progress bar on the page.
        unfinished = (
            await db.scalars(
                select(Job)
                .where(
                    Job.kind == JobKind.SEGMENT_RESYNC,
                    Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                )
                .order_by(Job.id.desc())
                .limit(20)
            )
        ).all()
        job_id = next((j.id for j in unfinished if j.params.get("segment_id") == segment.id), None)
    progress = await progress_of(db, job_id)
    return {
        "members": members,
        "next_cursor": encode_cursor(last),
        "is_inclusion": settings.inclusion_segment_id == segment.id,
        "progress": progress,
    }


async def _review(
    request: Request,
    session: auth.Ticket,
    db: Db,
    form: SegmentForm,
    *,
    segment: Segment | None = None,
    notice: str | None = None,
    for_inclusion: bool = False,
) -> Response:
    """The preview of POST /api/segments/preview, on the page, before Save."""
    try:
        raw = form.raw_filter()
        if raw is None:  # what saving would answer, rather than the grammar's "got null"
            raise Unprocessable("invalid_filter", "an active segment needs a filter")
        size, sample = await segments.preview(db, raw)
    except (FilterTextError, AppError) as error:
        form.errors.append(error.message if isinstance(error, AppError) else str(error))
        form.reviewed = ""
        return await _form_page(
            request, session, db, form, segment=segment, status=422, for_inclusion=for_inclusion
        )
    form.reviewed = canonical(raw)
    form.filter_text = pretty(raw)
    return await _form_page(
        request,
        session,
        db,
        form,
        segment=segment,
        preview=Preview(size, list(sample), _sample_columns(raw)),
        notice=notice,
        for_inclusion=for_inclusion,
    )


@router.get("")
async def list_page(request: Request, session: auth.SessionTicket, db: Db) -> Response:
    settings = await preferences.load_settings(db)
    rows = [{"segment": s, "criteria": criteria_text(s)} for s in await segments.list_segments(db)]
    return render(
        request,
        "segments.html",
        {"title": "Segments", "rows": rows, "inclusion_id": settings.inclusion_segment_id},
        session=session,
        page="segments",
    )


@router.get("/new")
async def new_form(
    request: Request,
    session: auth.SessionTicket,
    db: Db,
    for_: Annotated[str | None, Query(alias="for")] = None,
    type_: Annotated[str | None, Query(alias="type")] = None,
) -> Response:
    for_inclusion = for_ == "inclusion"
    form = SegmentForm(
        type=SegmentType.STATIC.value if type_ == "static" else SegmentType.ACTIVE.value,
        make_inclusion=for_inclusion,
    )
    return await _form_page(request, session, db, form, for_inclusion=for_inclusion)


@router.post("/new")
async def create(request: Request, posted: auth.PostedForm, db: Db) -> Response:
    form = SegmentForm.posted(posted)
    session = posted.session
    action = posted.text("action", "review")
    for_inclusion = posted.text("for") == "inclusion"
    if form.type == SegmentType.ACTIVE and action != "save":
        return await _review(request, session, db, form, for_inclusion=for_inclusion)
    try:
        raw = form.raw_filter() if form.type == SegmentType.ACTIVE else None
        body = SegmentIn.model_validate({"name": form.name, "type": form.type, "filter": raw})
    except FilterTextError as error:
        form.errors.append(str(error))
    except ValidationError as error:
        form.errors.extend(validation_messages(error, FIELD_LABELS))
    if form.errors:
        return await _form_page(request, session, db, form, status=422, for_inclusion=for_inclusion)
    if body.type == SegmentType.ACTIVE and canonical(raw) != form.reviewed:
        return await _review(
            request,
            session,
            db,
            form,
            notice="Review the size and sample of these criteria, then save.",
            for_inclusion=for_inclusion,
        )
    try:
        async with db.begin_nested():
            segment = await segments.create_segment(db, body.name, body.type, body.filter)
            inclusion = form.make_inclusion and body.type == SegmentType.ACTIVE
            if inclusion:
                await preferences.set_inclusion_segment(db, segment.id)
    except AppError as error:
        form.errors.append(error.message)
        form.reviewed = ""
        return await _form_page(request, session, db, form, status=422, for_inclusion=for_inclusion)
    if body.type == SegmentType.STATIC:
        return redirect(
            request,
            f"/console/segments/{segment.id}",
            f"Saved the static segment “{segment.name}”. Add its members by email below.",
        )
    if inclusion:
        return redirect(
            request,
            "/console",
            f"Saved “{segment.name}” ({plural(segment.size, 'contact')}) and made it the inclusion "
            f"segment. {NOTHING_QUEUED}",
        )
    return redirect(
        request, "/console/segments", f"Saved “{segment.name}”: {matching(segment.size)}."
    )


@router.get("/{segment_id}")
async def edit_form(
    request: Request,
    segment_id: RowId,
    session: auth.SessionTicket,
    db: Db,
    after: Annotated[str | None, Query()] = None,
    job: Annotated[RowId | None, Query()] = None,
) -> Response:
    segment = await segments.get_segment(db, segment_id)
    form = SegmentForm(
        name=segment.name,
        type=segment.type,
        filter_text=pretty(segment.filter),
        reviewed=canonical(segment.filter) if segment.filter is not None else "",
    )
    if segment.type == SegmentType.STATIC:
        return await _static_page(
            request, session, db, segment, form, job_id=job, after=decode_cursor(after)
        )
    return await _form_page(
        request, session, db, form, segment=segment, job_id=job, after=decode_cursor(after)
    )


async def _static_page(
    request: Request,
    session: auth.Ticket,
    db: Db,
    segment: Segment,
    form: SegmentForm,
    *,
    status: int = 200,
    emails_text: str = "",
    job_id: int | None = None,
    after: int | None = None,
) -> Response:
    context = await _segment_context(db, segment, after, job_id)
    return render(
        request,
        "segment_static.html",
        {
            "title": f"Static segment “{segment.name}”",
            "segment": segment,
            "form": form,
            "emails_text": emails_text,
            **context,
        },
        session=session,
        status=status,
        page="segments",
    )


@router.post("/{segment_id}")
async def update(request: Request, segment_id: RowId, posted: auth.PostedForm, db: Db) -> Response:
    segment = await segments.get_segment(db, segment_id)
    session = posted.session
    form = SegmentForm.posted(posted)
    form.type = segment.type
    action = posted.text("action", "review")
    fields: dict[str, Any] = {"name": form.name}
    if segment.type == SegmentType.ACTIVE:
        if action != "save":
            return await _review(request, session, db, form, segment=segment)
        try:
            raw = form.raw_filter()
        except FilterTextError as error:
            form.errors.append(str(error))
            return await _form_page(request, session, db, form, segment=segment, status=422)
        if canonical(raw) != form.reviewed:
            return await _review(
                request,
                session,
                db,
                form,
                segment=segment,
                notice="Review the size and sample of these criteria, then save.",
            )
        if canonical(raw) != canonical(segment.filter):
            fields["filter"] = raw
    try:
        body = SegmentPatch.model_validate(fields)
    except ValidationError as error:
        form.errors.extend(validation_messages(error, FIELD_LABELS))
        return await _invalid_edit(request, session, db, segment, form)
    try:
        async with db.begin_nested():
            await segments.update_segment(
                db, segment, body.model_dump(include=body.model_fields_set)
            )
    except AppError as error:
        form.errors.append(error.message)
        return await _invalid_edit(request, session, db, segment, form)
    return redirect(
        request,
        f"/console/segments/{segment.id}",
        f"Saved “{segment.name}”: {plural(segment.size, 'contact')}."
        + (
            " Its new members sync when their data next changes, or on a resync."
            if "filter" in fields
            else ""
        ),
    )


async def _invalid_edit(
    request: Request, session: auth.Ticket, db: Db, segment: Segment, form: SegmentForm
) -> Response:
    await db.refresh(segment)
    if segment.type == SegmentType.STATIC:
        return await _static_page(request, session, db, segment, form, status=422)
    form.reviewed = ""
    return await _form_page(request, session, db, form, segment=segment, status=422)


@router.post("/{segment_id}/members")
async def change_members(
    request: Request, segment_id: RowId, posted: auth.PostedForm, db: Db
) -> Response:
    segment = await segments.get_segment(db, segment_id)
    add = posted.text("action") != "remove"
    emails = [email for email in _EMAIL_SPLIT.split(posted.text("emails")) if email]
    form = SegmentForm(name=segment.name, type=segment.type)
    try:
        if not emails:
            raise ValueError("enter at least one email address")
        body = MembersIn.model_validate({"emails": emails})
        async with db.begin_nested():
            size_before = segment.size
            missing = await segments.change_static_members(
                db, segment, add=add, emails=body.emails, contact_ids=None
            )
    except ValueError as error:  # ValidationError is a ValueError too
        messages = (
            validation_messages(error, FIELD_LABELS)
            if isinstance(error, ValidationError)
            else [f"Emails: {error}"]
        )
        form.errors.extend(messages)
    except AppError as error:
        form.errors.append(error.message)
    if form.errors:
        await db.refresh(segment)
        return await _static_page(
            request,
            posted.session,
            db,
            segment,
            form,
            status=422,
            emails_text=posted.text("emails"),
        )
    changed = abs(segment.size - size_before)
    verb = "Added" if add else "Removed"
    members = "member" if changed == 1 else "members"
    message = f"{verb} {changed} {members}; “{segment.name}” has {segment.size} now."
    if missing:
        message += " No contact has " + ", ".join(str(m) for m in missing) + "."
    return redirect(
        request, f"/console/segments/{segment.id}", message, "error" if missing else "success"
    )


@router.post("/{segment_id}/delete")
async def delete(request: Request, segment_id: RowId, posted: auth.PostedForm, db: Db) -> Response:
    segment = await segments.get_segment(db, segment_id)
    name = segment.name
    try:
        async with db.begin_nested():
            await segments.delete_segment(db, segment)
    except AppError as error:
        return redirect(request, f"/console/segments/{segment_id}", error.message, "error")
    return redirect(request, "/console/segments", f"Deleted “{name}”.")
