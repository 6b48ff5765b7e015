"""Segments routes (§6): thin wrappers over syncgate.sync.segments."""

from fastapi import APIRouter, Response, status

from syncgate.api import examples
from syncgate.api.deps import ADMIN_RESPONSES, AdminDep, SessionDep
from syncgate.api.examples import answers
from syncgate.api.examples import body as request
from syncgate.api.paging import Cursor, Limit, encode_cursor
from syncgate.errors import error_responses
from syncgate.sync import segments
from syncgate.sync.schemas import (
    ContactOut,
    ContactPage,
    FilterIn,
    MembersChangeOut,
    MembersIn,
    PreviewOut,
    RowId,
    SegmentIn,
    SegmentList,
    SegmentOut,
    SegmentPatch,
)

router = APIRouter(
    prefix="/api/segments",
    tags=["segments"],
    dependencies=[AdminDep],
    responses=ADMIN_RESPONSES,
)


@router.post(
    "",
    summary="Create a segment",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(422) | answers(201, examples.SEGMENT),
    openapi_extra=request(examples.SEGMENT_IN),
)
async def create_segment(body: SegmentIn, session: SessionDep) -> SegmentOut:
    """An **active** segment has a filter and follows the data (its membership is computed
    before the answer: `status` ready, `size`); a **static** one has an explicit member list
    and no filter. Filter grammar: `all`, `any`, `not` and
    `{"property", "operator", "value"}` conditions on HubSpot properties."""
    segment = await segments.create_segment(session, body.name, body.type, body.filter)
    return SegmentOut.of(segment)


@router.get("", summary="List segments", responses=answers(200, {"items": [examples.SEGMENT]}))
async def list_segments(session: SessionDep) -> SegmentList:
    """Every segment, active and static, with its status and size."""
    return SegmentList(items=[SegmentOut.of(s) for s in await segments.list_segments(session)])


@router.post(
    "/preview",
    summary="Preview a filter",
    responses=error_responses(422) | answers(200, examples.PREVIEW),
    openapi_extra=request({"filter": examples.FILTER}),
)
async def preview_segment(body: FilterIn, session: SessionDep) -> PreviewOut:
    """How many stored contacts a filter matches and up to 10 of them: the review step before
    saving a segment. Stores nothing."""
    size, sample = await segments.preview(session, body.filter)
    return PreviewOut(size=size, sample=[ContactOut.of(contact) for contact in sample])


@router.get(
    "/{segment_id}",
    summary="Get a segment",
    responses=error_responses(404) | answers(200, examples.SEGMENT),
)
async def get_segment(segment_id: RowId, session: SessionDep) -> SegmentOut:
    """One segment; its `filter` is returned exactly as it was sent."""
    return SegmentOut.of(await segments.get_segment(session, segment_id))


@router.patch(
    "/{segment_id}",
    summary="Rename a segment or change its filter",
    responses=error_responses(404, 422) | answers(200, examples.SEGMENT),
    openapi_extra=request(examples.SEGMENT_PATCH),
)
async def update_segment(segment_id: RowId, body: SegmentPatch, session: SessionDep) -> SegmentOut:
    """Changes the name and/or the filter of an active segment; its membership is recomputed.
    Editing the inclusion segment's filter queues nothing by itself."""
    segment = await segments.get_segment(session, segment_id)
    fields = body.model_dump(include=body.model_fields_set)
    return SegmentOut.of(await segments.update_segment(session, segment, fields))


@router.delete(
    "/{segment_id}",
    summary="Delete a segment",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
async def delete_segment(segment_id: RowId, session: SessionDep) -> Response:
    """Deletes a segment; 409 `segment_in_use` while it is the inclusion segment."""
    await segments.delete_segment(session, await segments.get_segment(session, segment_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{segment_id}/members",
    summary="List a segment's members",
    responses=error_responses(404, 422) | answers(200, examples.CONTACT_PAGE),
)
async def list_members(
    segment_id: RowId, session: SessionDep, after: Cursor, limit: Limit = 100
) -> ContactPage:
    """Members in id order, a page at a time: pass `next` as `after` for the next page."""
    segment = await segments.get_segment(session, segment_id)
    page, last = await segments.members_page(session, segment, limit, after)
    return ContactPage(items=[ContactOut.of(c) for c in page], next=encode_cursor(last))


async def _change_members(
    segment_id: int, body: MembersIn, session: SessionDep, *, add: bool
) -> MembersChangeOut:
    segment = await segments.get_segment(session, segment_id)
    size_before = segment.size
    missing = await segments.change_static_members(
        session, segment, add=add, emails=body.emails, contact_ids=body.contact_ids
    )
    return MembersChangeOut(
        **SegmentOut.of(segment).model_dump(),
        changed=abs(segment.size - size_before),
        not_found=missing,
    )


@router.post(
    "/{segment_id}/members",
    summary="Add members to a static segment",
    responses=error_responses(404, 409) | answers(200, examples.MEMBERS_CHANGED),
    openapi_extra=request(examples.MEMBERS_IN),
)
async def add_members(segment_id: RowId, body: MembersIn, session: SessionDep) -> MembersChangeOut:
    """Adds contacts by `emails` or `contact_ids`; inputs that match no stored contact are
    listed in `not_found`. 409 `segment_not_static` for an active segment."""
    return await _change_members(segment_id, body, session, add=True)


@router.delete(
    "/{segment_id}/members",
    summary="Remove members from a static segment",
    responses=error_responses(404, 409) | answers(200, examples.MEMBERS_CHANGED),
    openapi_extra=request(examples.MEMBERS_IN),
)
async def remove_members(
    segment_id: RowId, body: MembersIn, session: SessionDep
) -> MembersChangeOut:
    """Removes contacts by `emails` or `contact_ids`. 409 `segment_not_static` for an active
    segment."""
    return await _change_members(segment_id, body, session, add=False)
