"""Decisions and outcomes: the vocabulary of the gate (CONTRACT §5)."""

from dataclasses import dataclass, field
from enum import StrEnum


class Direction(StrEnum):
    HUBSPOT_TO_SALESFORCE = "hubspot_to_salesforce"
    SALESFORCE_TO_HUBSPOT = "salesforce_to_hubspot"


class Decision(StrEnum):
    FORWARDED = "forwarded"
    CREATED_OUTSIDE_SEGMENT = "created_outside_segment"
    SKIPPED_NOT_IN_SEGMENT = "skipped_not_in_segment"
    SKIPPED_NO_CHANGE = "skipped_no_change"
    SKIPPED_STALE = "skipped_stale"
    SKIPPED_UNMAPPED = "skipped_unmapped"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Membership:
    """The contact's place in the inclusion segment, evaluated on its HubSpot properties."""

    inclusion_segment_id: int | None
    member: bool = False
    joined: bool = False  # became a member with this very change

    @property
    def allows_sync(self) -> bool:
        return self.inclusion_segment_id is None or self.member


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    reason: str
    # HubSpot property → value, whichever way the change goes.
    values: dict[str, str | None] = field(default_factory=dict)

    @property
    def queues_delivery(self) -> bool:
        return bool(self.values) and self.decision in (
            Decision.FORWARDED,
            Decision.CREATED_OUTSIDE_SEGMENT,
        )


def ignored(reason: str) -> Outcome:
    return Outcome(Decision.IGNORED, reason)
