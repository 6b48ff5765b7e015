"""Segments routes (§6): thin wrappers over syncgate.sync.segments."""

from fastapi import APIRouter, Response, status

from syncgate.api.deps import ADMIN_RESPONSES, AdminDep, SessionDep
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


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(422))
async def create_segment(body: SegmentIn, session: SessionDep) -> SegmentOut:
    segment = await segments.create_segment(session, body.name, body.type, body.filter)
    return SegmentOut.of(segment)


@router.get("")
async def list_segments(session: SessionDep) -> SegmentList:
    return SegmentList(items=[SegmentOut.of(s) for s in await segments.list_segments(session)])


@router.post("/preview", responses=error_responses(422))
async def preview_segment(body: FilterIn, session: SessionDep) -> PreviewOut:
    size, sample = await segments.preview(session, body.filter)
    return PreviewOut(size=size, sample=[ContactOut.of(contact) for contact in sample])


@router.get("/{segment_id}", responses=error_responses(404))
async def get_segment(segment_id: RowId, session: SessionDep) -> SegmentOut:
    return SegmentOut.of(await segments.get_segment(session, segment_id))


@router.patch("/{segment_id}", responses=error_responses(404, 422))
async def update_segment(segment_id: RowId, body: SegmentPatch, session: SessionDep) -> SegmentOut:
    segment = await segments.get_segment(session, segment_id)
    fields = body.model_dump(include=body.model_fields_set)
    return SegmentOut.of(await segments.update_segment(session, segment, fields))


@router.delete(
    "/{segment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
async def delete_segment(segment_id: RowId, session: SessionDep) -> Response:
    await segments.delete_segment(session, await segments.get_segment(session, segment_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{segment_id}/members", responses=error_responses(404, 422))
async def list_members(
    segment_id: RowId, session: SessionDep, after: Cursor, limit: Limit = 100
) -> ContactPage:
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


@router.post("/{segment_id}/members", responses=error_responses(404, 409))
async def add_members(segment_id: RowId, body: MembersIn, session: SessionDep) -> MembersChangeOut:
    return await _change_members(segment_id, body, session, add=True)


@router.delete("/{segment_id}/members", responses=error_responses(404, 409))
async def remove_members(
    segment_id: RowId, body: MembersIn, session: SessionDep
) -> MembersChangeOut:
    return await _change_members(segment_id, body, session, add=False)
