"""The outbox: deliveries to HubSpot or Salesforce as an explicit state machine."""

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from syncgate.models import Base, TimestampMixin, UTCDateTime, utc_now

if TYPE_CHECKING:
    from syncgate.sync.models import Contact


class Target(StrEnum):
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    DEAD = "dead"


class Operation(StrEnum):
    CREATE = "create"  # no linked record yet: find by email, else create
    UPDATE = "update"


class Delivery(TimestampMixin, Base):
    """Pending changes for one target record, coalesced: the latest value per field wins.

    pending → in_flight (leased) → done | pending (retry, with backoff) | dead
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    target: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # HubSpot property → value; translated to the target's field names when sent.
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Since the first of the failed attempts in a row: the retry window counts from here.
    retrying_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Every attempt's outcome, kept across manual retries.
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # When the earliest webhook that this delivery carries was received (latency metric).
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    source_event: Mapped[str | None] = mapped_column(String(64))
    # Every email a create was looked up or sent under: when an answer is lost and the email
    # changes before the retry, the record made under the old email must still be found.
    searched_emails: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Lets a delivery be queued for a contact that is inserted in the same flush.
    contact: Mapped["Contact"] = relationship(lazy="raise")

    __table_args__ = (
        # A claim reads it in id order: the oldest due deliveries of a target, first.
        Index("ix_deliveries_claim", "target", "status", "id"),
        Index("ix_deliveries_contact_target_status", "contact_id", "target", "status"),
    )
