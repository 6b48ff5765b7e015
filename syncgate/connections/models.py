"""One row per platform: its circuit breaker, its health, its API allowance and (for HubSpot)
the request budget that every worker shares."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from syncgate.models import Base, TimestampMixin, UTCDateTime


class Breaker(StrEnum):
    CLOSED = "closed"  # calls go out
    OPEN = "open"  # nothing goes out but one probe call when `next_probe_at` is due
    HALF_OPEN = "half_open"  # the probe passed: the next batch decides between the two


class PlatformStatus(TimestampMixin, Base):
    __tablename__ = "platform_status"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    breaker: Mapped[str] = mapped_column(String(16), default=Breaker.CLOSED)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # When the breaker opened ("unavailable since"); kept through half-open, cleared on close.
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Seconds between the last failed probe and the next one; doubles up to a cap.
    probe_interval: Mapped[float | None] = mapped_column(Float)
    # When some worker should make the next probe call (breaker open, or allowance over a share).
    next_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The daily API allowance as the platform last reported it.
    api_used: Mapped[int | None] = mapped_column(Integer)
    api_allowed: Mapped[int | None] = mapped_column(Integer)
    api_usage_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The shared request window: epoch seconds of the requests it holds, and a pause.
    budget_sent: Mapped[list[float]] = mapped_column(JSON, default=list, server_default="[]")
    budget_paused_until: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
