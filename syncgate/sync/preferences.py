"""Operator settings: the inclusion segment and how records are created on each side."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.db import insert_ignoring_conflicts
from syncgate.errors import Unprocessable
from syncgate.sync.models import Segment, SegmentType, SyncSettings
from syncgate.sync.segments import get_segment

SETTINGS_ROW_ID = 1


async def load_settings(session: AsyncSession) -> SyncSettings:
    """The single settings row, created with the defaults on first use."""
    row = await session.get(SyncSettings, SETTINGS_ROW_ID)
    if row is None:
        await session.execute(
            insert_ignoring_conflicts(
                session,
                SyncSettings,
                [
                    {
                        "id": SETTINGS_ROW_ID,
                        "create_from_leads": True,
                        "create_from_contacts": True,
                        "new_contacts_as": "Lead",
                    }
                ],
            )
        )
        row = await session.scalar(
            select(SyncSettings).where(SyncSettings.id == SETTINGS_ROW_ID).with_for_update()
        )
    assert row is not None
    return row


async def set_inclusion_segment(session: AsyncSession, segment_id: int | None) -> SyncSettings:
    """Choose the inclusion segment (active only) or clear it. Rule 2: this queues nothing."""
    settings = await load_settings(session)
    if segment_id is not None:
        segment: Segment = await get_segment(session, segment_id)
        if segment.type != SegmentType.ACTIVE:
            raise Unprocessable(
                "segment_not_active",
                f"segment {segment_id} is static; only an active segment can be the "
                "inclusion segment because its membership must follow the data",
            )
    settings.inclusion_segment_id = segment_id
    await session.flush()
    return settings
