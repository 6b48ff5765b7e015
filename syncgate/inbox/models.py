"""The inbox: every webhook event, stored once before it is acknowledged."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from syncgate.models import Base, UTCDateTime, utc_now

# Length of the `kind` column (a HubSpot subscription type or a Salesforce sObject type).
KIND_MAX_LENGTH = 64


class Source(StrEnum):
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"


class InboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class InboxEvent(Base):
    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(KIND_MAX_LENGTH))
    # The record the event is about ("hubspot:<objectId>" or "salesforce:<record id>").
    object_key: Mapped[str] = mapped_column(String(64))
    occurred_at_ms: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # On PostgreSQL its pages are half filled (migration 0011): a claim's lease is then written
    # beside the row, with no index touched.
    __table_args__ = (
        UniqueConstraint("source", "dedup_key", name="uq_inbox_events_source_dedup_key"),
        # A round claims the oldest pending events: read in id order, it stops at the round's size.
        Index("ix_inbox_events_status_id", "status", "id"),
        Index("ix_inbox_events_object_key", "object_key"),
    )
