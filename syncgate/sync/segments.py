"""Segments: active ones follow their filter, static ones keep an explicit member list."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from syncgate.db import among, insert_ignoring_conflicts, insert_rows
from syncgate.errors import Conflict, NotFound, Unprocessable
from syncgate.models import table_of
from syncgate.sync.contacts import ContactState, normalise_email
from syncgate.sync.filters import (
    Filter,
    InvalidFilter,
    matches,
    parse_filter,
    property_names,
    to_sql,
)
from syncgate.sync.mapping import Mapping
from syncgate.sync.models import (
    Contact,
    Segment,
    SegmentMember,
    SegmentStatus,
    SegmentType,
    SyncSettings,
)

PREVIEW_SAMPLE_SIZE = 10
_MEMBERS = table_of(SegmentMember)


def validated_filter(raw: Any) -> Filter:
    try:
        parsed = parse_filter(raw)
    except InvalidFilter as error:
        raise Unprocessable("invalid_filter", str(error)) from None
    if _contains_nul(raw):
        # PostgreSQL text cannot hold NUL: no stored value could match, and the query would fail.
        raise Unprocessable("invalid_filter", "filter: text may not contain NUL characters")
    return parsed


def _contains_nul(raw: Any) -> bool:
    if isinstance(raw, str):
        return "\x00" in raw
    if isinstance(raw, dict):
        return any(_contains_nul(key) or _contains_nul(value) for key, value in raw.items())
    if isinstance(raw, list):
        return any(_contains_nul(item) for item in raw)
    return False


async def get_segment(session: AsyncSession, segment_id: int) -> Segment:
    segment = await session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} does not exist")
    return segment


async def list_segments(session: AsyncSession) -> Sequence[Segment]:
    return (await session.scalars(select(Segment).order_by(Segment.id))).all()


async def create_segment(
    session: AsyncSession, name: str, segment_type: SegmentType, raw_filter: Any
) -> Segment:
    if segment_type is SegmentType.STATIC:
        if raw_filter is not None:
            raise Unprocessable("invalid_filter", "a static segment takes no filter")
        segment = Segment(name=name, type=segment_type, status=SegmentStatus.READY, size=0)
        session.add(segment)
        await session.flush()
        return segment
    if raw_filter is None:
        raise Unprocessable("invalid_filter", "an active segment needs a filter")
    parsed = validated_filter(raw_filter)
    segment = Segment(name=name, type=segment_type, filter=raw_filter)
    session.add(segment)
    await session.flush()
    await recompute_membership(session, segment, parsed)
    return segment


async def update_segment(
    session: AsyncSession, segment: Segment, fields: dict[str, Any]
) -> Segment:
    if "name" in fields:
        segment.name = fields["name"]
    if "filter" in fields:
        raw_filter = fields["filter"]
        if segment.type == SegmentType.STATIC:
            raise Unprocessable("invalid_filter", "a static segment takes no filter")
        if raw_filter is None:
            raise Unprocessable("invalid_filter", "an active segment needs a filter")
        parsed = validated_filter(raw_filter)
        segment.filter = raw_filter
        # Rule 2: a new filter changes membership but queues nothing by itself.
        await recompute_membership(session, segment, parsed)
    await session.flush()
    return segment


async def delete_segment(session: AsyncSession, segment: Segment) -> None:
    in_use = await session.scalar(
        select(SyncSettings.id).where(SyncSettings.inclusion_segment_id == segment.id)
    )
    if in_use is not None:
        raise Conflict(
            "segment_in_use",
            f"segment {segment.id} is the inclusion segment; clear or change it first",
        )
    await session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    await session.delete(segment)
    await session.flush()


async def recompute_membership(session: AsyncSession, segment: Segment, parsed: Filter) -> None:
    """Rebuild an active segment's member list from its filter, in SQL over all contacts."""
    segment.status = SegmentStatus.PROCESSING
    await session.flush()
    await session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    inserted = await session.execute(
        insert(SegmentMember).from_select(
            ["segment_id", "contact_id"],
            select(literal(segment.id), Contact.id).where(to_sql(parsed)),
        ),
        execution_options={"preserve_rowcount": True},  # psycopg's is dropped otherwise
    )
    segment.size = inserted.rowcount  # type: ignore[attr-defined]
    segment.status = SegmentStatus.READY
    await session.flush()


async def _member_count(session: AsyncSession, segment_id: int) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(SegmentMember)
            .where(SegmentMember.segment_id == segment_id)
        )
        or 0
    )


async def preview(session: AsyncSession, raw_filter: Any) -> tuple[int, Sequence[Contact]]:
    """Size and a sample of the contacts a filter matches; stores nothing."""
    condition = to_sql(validated_filter(raw_filter))
    size = await session.scalar(select(func.count()).select_from(Contact).where(condition)) or 0
    sample = (
        await session.scalars(
            select(Contact).where(condition).order_by(Contact.id).limit(PREVIEW_SAMPLE_SIZE)
        )
    ).all()
    return size, sample


async def members_page(
    session: AsyncSession, segment: Segment, limit: int, after: int | None
) -> tuple[Sequence[Contact], int | None]:
    query = (
        select(Contact)
        .join(SegmentMember, SegmentMember.contact_id == Contact.id)
        .where(SegmentMember.segment_id == segment.id)
        .order_by(Contact.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Contact.id > after)
    rows = (await session.scalars(query)).all()
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


async def _resolve_contacts(
    session: AsyncSession, emails: list[str] | None, contact_ids: list[int] | None
) -> tuple[list[int], list[str | int]]:
    """Contact ids for the given emails or ids, and the inputs that matched no contact."""
    if emails is not None:
        wanted = {normalise_email(email): email for email in emails}
        rows = (
            await session.execute(
                select(Contact.id, Contact.email).where(
                    Contact.email.in_([key for key in wanted if key])
                )
            )
        ).all()
        found = {email for _, email in rows}
        missing: list[str | int] = [raw for key, raw in wanted.items() if key not in found]
        return [contact_id for contact_id, _ in rows], missing
    ids = contact_ids or []
    existing = set((await session.scalars(select(Contact.id).where(Contact.id.in_(ids)))).all())
    return sorted(existing), [contact_id for contact_id in ids if contact_id not in existing]


async def change_static_members(
    session: AsyncSession,
    segment: Segment,
    *,
    add: bool,
    emails: list[str] | None,
    contact_ids: list[int] | None,
) -> list[str | int]:
    """Add or remove members of a static segment; returns the inputs that matched no contact."""
    if segment.type != SegmentType.STATIC:
        raise Conflict(
            "segment_not_static",
            f"segment {segment.id} is active: its members follow its filter",
        )
    ids, missing = await _resolve_contacts(session, emails, contact_ids)
    if ids and add:
        await session.execute(
            insert_ignoring_conflicts(
                session,
                SegmentMember,
                [{"segment_id": segment.id, "contact_id": contact_id} for contact_id in ids],
            )
        )
    elif ids:
        await session.execute(
            delete(SegmentMember).where(
                SegmentMember.segment_id == segment.id, SegmentMember.contact_id.in_(ids)
            )
        )
    segment.size = await _member_count(session, segment.id)
    await session.flush()
    return missing


@dataclass(frozen=True)
class ActiveSegment:
    id: int
    filter: Filter


async def active_segments(session: AsyncSession) -> list[ActiveSegment]:
    """Every active segment with its parsed filter (load once, evaluate for many contacts)."""
    rows = (
        await session.execute(
            select(Segment.id, Segment.filter).where(Segment.type == SegmentType.ACTIVE)
        )
    ).all()
    return [ActiveSegment(segment_id, parse_filter(raw)) for segment_id, raw in rows]


def membership_change(
    current: set[int], values: dict[str, str | None], segments: list[ActiveSegment]
) -> tuple[set[int], set[int]]:
    """The active segments a contact with these values joins and leaves (ids)."""
    should = {segment.id for segment in segments if matches(segment.filter, values)}
    active_ids = {segment.id for segment in segments}
    return should - current, (current & active_ids) - should


class Memberships:
    """The segment memberships of a batch of contacts: loaded in one query, re-evaluated in
    Python as contacts change, written back as joins, leaves and size steps."""

    def __init__(self, segments: list[ActiveSegment]) -> None:
        self.segments = segments
        self._members: dict[ContactState, set[int]] = {}
        self._joined: set[tuple[int, ContactState]] = set()
        self._left: set[tuple[int, ContactState]] = set()
        self._size_steps: dict[int, int] = defaultdict(int)

    async def load(self, connection: AsyncConnection, contacts: list[ContactState]) -> None:
        by_id = {contact.id: contact for contact in contacts}
        for contact in contacts:
            self._members.setdefault(contact, set())
        if not by_id:
            return
        rows = await connection.execute(
            select(_MEMBERS.c.contact_id, _MEMBERS.c.segment_id).where(
                among(connection.dialect, _MEMBERS.c.contact_id, by_id)
            )
        )
        for contact_id, segment_id in rows:
            self._members[by_id[contact_id]].add(segment_id)

    def add(self, contact: ContactState) -> None:
        """A contact created in memory: a member of nothing yet."""
        self._members.setdefault(contact, set())

    def is_member(self, contact: ContactState, segment_id: int | None) -> bool:
        return segment_id is not None and segment_id in self._members[contact]

    def refresh(
        self, contact: ContactState, values: dict[str, str | None] | None = None
    ) -> tuple[set[int], set[int]]:
        """Re-evaluate every active segment for the contact; its segment ids before and after."""
        before = self._members[contact]
        if values is None:
            values = contact.property_values()
        joined, left = membership_change(before, values, self.segments)
        if not joined and not left:
            return before, before
        for segment_id in joined:
            self._step(segment_id, contact, self._joined, self._left, 1)
        for segment_id in left:
            self._step(segment_id, contact, self._left, self._joined, -1)
        after = (before - left) | joined
        self._members[contact] = after
        return before, after

    def _step(
        self,
        segment_id: int,
        contact: ContactState,
        into: set[tuple[int, ContactState]],
        undo: set[tuple[int, ContactState]],
        step: int,
    ) -> None:
        key = (segment_id, contact)
        if key in undo:  # joined and left again within the batch: nothing to write
            undo.discard(key)
        else:
            into.add(key)
        self._size_steps[segment_id] += step

    async def write(self, connection: AsyncConnection) -> None:
        """Rows first, then the sizes in segment order (the last locks a batch takes)."""
        await insert_rows(
            connection,
            _MEMBERS,
            [
                {"segment_id": s, "contact_id": c}
                for s, c in sorted((s, c.id) for s, c in self._joined)
            ],
            conflict=["segment_id", "contact_id"],
        )
        if self._left:
            await connection.execute(
                delete(_MEMBERS).where(
                    _MEMBERS.c.segment_id == bindparam("s"),
                    _MEMBERS.c.contact_id == bindparam("c"),
                ),
                [{"s": s, "c": c} for s, c in sorted((s, c.id) for s, c in self._left)],
            )
        await add_to_sizes(connection, self._size_steps)
        self._joined.clear()
        self._left.clear()
        self._size_steps.clear()


async def add_to_sizes(connection: AsyncConnection, steps: dict[int, int]) -> None:
    """Move segment sizes by the given steps, in SQL: concurrent workers would lose updates
    with read-modify-write."""
    rows = [{"s": segment_id, "step": step} for segment_id, step in sorted(steps.items()) if step]
    if rows:
        segments = table_of(Segment)
        await connection.execute(
            update(segments)
            .where(segments.c.id == bindparam("s"))
            .values(size=segments.c.size + bindparam("step")),
            rows,
        )


async def is_member(session: AsyncSession, contact: Contact, segment_id: int | None) -> bool:
    """Whether the contact is in the segment (False when no segment is given)."""
    if segment_id is None or contact.id is None:
        return False
    found = await session.scalar(
        select(SegmentMember.contact_id).where(
            SegmentMember.segment_id == segment_id, SegmentMember.contact_id == contact.id
        )
    )
    return found is not None


def properties_to_read(mappings: Iterable[Mapping], segments: Iterable[ActiveSegment]) -> list[str]:
    """What to read of a HubSpot contact: the mapped properties and every property an active
    segment's filter names (CONTRACT §4)."""
    names = {"email", *(m.hubspot_property for m in mappings)}
    for segment in segments:
        names |= property_names(segment.filter)
    return sorted(names)
