"""The sync domain's tables: the contact mirror, segments, settings and field mappings."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from syncgate.models import Base, TimestampMixin, UTCDateTime, utc_now


class SegmentType(StrEnum):
    ACTIVE = "active"
    STATIC = "static"


class SegmentStatus(StrEnum):
    PROCESSING = "processing"
    READY = "ready"


class SyncRule(StrEnum):
    TWO_WAY = "two_way"
    PREFER_SALESFORCE_UNLESS_BLANK = "prefer_salesforce_unless_blank"
    ALWAYS_SALESFORCE = "always_salesforce"
    DONT_SYNC = "dont_sync"


class SalesforceObject(StrEnum):
    LEAD = "Lead"
    CONTACT = "Contact"


class Contact(TimestampMixin, Base):
    """One person as the service knows them: HubSpot properties plus the Salesforce link."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hubspot_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    salesforce_id: Mapped[str | None] = mapped_column(String(18), unique=True)
    salesforce_object: Mapped[str | None] = mapped_column(String(16))
    # The last known Salesforce values of the linked record (field → value), from its
    # notifications and from our own writes; changes are diffed against it.
    salesforce_values: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    salesforce_modified_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The delivery whose write `salesforce_values` shows until an Outbound Message confirms it:
    # a notification that only carries those values back is that delivery's echo.
    salesforce_echo_of: Mapped[int | None] = mapped_column(BigInteger)
    hubspot_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))

    # Read-only: properties are written in bulk by `sync.batch`.
    properties: Mapped[list["ContactProperty"]] = relationship(
        primaryjoin="Contact.id == foreign(ContactProperty.contact_id)",
        lazy="selectin",
        viewonly=True,
    )

    def property_values(self) -> dict[str, str | None]:
        return {prop.name: prop.value for prop in self.properties}


class ContactProperty(Base):
    """One HubSpot property value, with its folded and numeric forms for segment filters.

    Without a foreign key to its contact: a backfill writes a dozen rows per contact, and on
    PostgreSQL checking each row's contact cost a third of the backfill's time. Only
    `sync.batch` writes these rows, for contacts it holds locked; contacts are never deleted."""

    __tablename__ = "contact_properties"

    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    value_folded: Mapped[str | None] = mapped_column(Text)
    value_number: Mapped[float | None] = mapped_column(Float)
    # HubSpot's occurredAt (ms) of the change that set this value; older changes never win.
    changed_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)

    # Number comparisons never match a NULL, and most values are no number: only numbers.
    __table_args__ = (
        Index(
            "ix_contact_properties_name_number",
            "name",
            "value_number",
            postgresql_where=text("value_number IS NOT NULL"),
            sqlite_where=text("value_number IS NOT NULL"),
        ),
    )


class Segment(TimestampMixin, Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    filter: Mapped[Any | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=SegmentStatus.PROCESSING)
    size: Mapped[int] = mapped_column(Integer, default=0)


class SegmentMember(Base):
    """Who is in a segment. Derived data, written in bulk (a membership rebuild inserts every
    member at once), so without foreign keys: on PostgreSQL their checks cost more than the
    query that finds the members. `delete_segment` removes a segment's rows; contacts are
    never deleted."""

    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class SyncSettings(TimestampMixin, Base):
    """The single row of operator settings (id is always 1)."""

    __tablename__ = "sync_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inclusion_segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT")
    )
    create_from_leads: Mapped[bool] = mapped_column(Boolean, default=True)
    create_from_contacts: Mapped[bool] = mapped_column(Boolean, default=True)
    new_contacts_as: Mapped[str] = mapped_column(String(16), default=SalesforceObject.LEAD)


class FieldMapping(Base):
    __tablename__ = "field_mappings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    hubspot_property: Mapped[str] = mapped_column(String(255), unique=True)
    lead_field: Mapped[str | None] = mapped_column(String(255))
    contact_field: Mapped[str | None] = mapped_column(String(255))
    rule: Mapped[str] = mapped_column(String(40))


class DecisionRecord(Base):
    """One gate decision per change, contact and direction: the answer to "why (not)?"."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    direction: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    source_event: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # Lets a decision name a contact that is inserted in the same flush.
    contact: Mapped[Contact | None] = relationship(lazy="raise")

    __table_args__ = (
        Index("ix_decisions_contact_id_id", "contact_id", "id"),
        Index("ix_decisions_decision_id", "decision", "id"),
    )
