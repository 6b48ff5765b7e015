"""The gate (CONTRACT §5): a pure function from a change and the contact's state to a decision
and the values to send."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from syncgate.sync.mapping import Mapping as FieldMapping
from syncgate.sync.models import SyncRule


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
    # HubSpot → Salesforce: HubSpot property → value; Salesforce → HubSpot: property → value.
    values: dict[str, str | None] = field(default_factory=dict)

    @property
    def queues_delivery(self) -> bool:
        return bool(self.values) and self.decision in (
            Decision.FORWARDED,
            Decision.CREATED_OUTSIDE_SEGMENT,
        )


def same_value(left: object, right: object) -> bool:
    """Platform values compare as text, numerically when both are numbers; blank equals absent."""
    a = "" if left is None else str(left).strip()
    b = "" if right is None else str(right).strip()
    if a == b:
        return True
    if a.lower() in ("true", "false") or b.lower() in ("true", "false"):
        return a.lower() == b.lower()
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _blank(value: object) -> bool:
    return value is None or str(value).strip() == ""


def salesforce_field(mapping: FieldMapping, object_type: str) -> str | None:
    return mapping.lead_field if object_type == "Lead" else mapping.contact_field


@dataclass(frozen=True)
class HubSpotChange:
    """A HubSpot-side change to one contact, as the mirror saw it."""

    changed: frozenset[str]  # properties whose stored value this change altered
    properties: Mapping[str, str | None]  # the contact's HubSpot values after the change
    salesforce_object: str  # the linked object, or the one a new record would be created as
    linked: bool  # a Salesforce record is already linked
    salesforce_values: Mapping[str, object]  # last known Salesforce values by field name
    stale: bool = False  # every value it carried is older than what the mirror holds
    full: bool = False  # send every mapped property (creation, resync)
    # Values still on their way to Salesforce (pending or in-flight deliveries), by field name:
    # Salesforce will have them, so a change back to the last known value must still be sent.
    queued_values: Mapping[str, object] = field(default_factory=dict)


def gate_hubspot_change(
    change: HubSpotChange, membership: Membership, mappings: Sequence[FieldMapping]
) -> Outcome:
    """Decide whether a HubSpot change goes to Salesforce and with which values (rules 1-3, 6-8)."""
    if change.stale:
        return Outcome(Decision.SKIPPED_STALE, "older than the values already applied")
    if not membership.allows_sync:
        return Outcome(
            Decision.SKIPPED_NOT_IN_SEGMENT,
            f"not a member of inclusion segment {membership.inclusion_segment_id}",
        )
    syncable = {
        m.hubspot_property: target
        for m in mappings
        if m.rule in (SyncRule.TWO_WAY, SyncRule.PREFER_SALESFORCE_UNLESS_BLANK)
        and (target := salesforce_field(m, change.salesforce_object)) is not None
    }
    rules = {m.hubspot_property: m.rule for m in mappings}
    mapped_changes = change.changed & set(syncable)
    # Rule 7: a record created in Salesforce gets every mapped field, not only the changed one;
    # but a change that touches nothing mapped (or nothing at all) is no reason to send it.
    full = change.full or membership.joined or (not change.linked and bool(mapped_changes))
    candidates = set(syncable) if full else mapped_changes
    if candidates and not change.linked and _blank(change.properties.get("email")):
        return Outcome(
            Decision.IGNORED, "no email: a Salesforce record cannot be matched or created"
        )
    if not candidates:
        if not change.changed and not full:
            return Outcome(Decision.SKIPPED_NO_CHANGE, "no property value changed")
        return Outcome(
            Decision.SKIPPED_UNMAPPED,
            "only properties without a HubSpot → Salesforce mapping changed: "
            + ", ".join(sorted(change.changed)),
        )

    values: dict[str, str | None] = {}
    for prop in sorted(candidates):
        value = change.properties.get(prop)
        theirs = change.salesforce_values.get(syncable[prop]) if change.linked else None
        if rules[prop] is SyncRule.PREFER_SALESFORCE_UNLESS_BLANK and not _blank(theirs):
            continue
        expected = change.queued_values.get(syncable[prop], theirs)
        if not change.linked and _blank(value) and _blank(expected):
            continue  # nothing to create a field from (nor a queued value to take back)
        if change.linked and same_value(value, expected):
            continue
        values[prop] = value
    if not values:
        return Outcome(Decision.SKIPPED_NO_CHANGE, "Salesforce already has these values")
    if membership.joined:
        why = "joined the inclusion segment: every mapped property is sent"
    elif not change.linked:
        why = "no linked Salesforce record: find by email or create, with every mapped property"
    elif change.full:
        why = "full sync of every mapped property"
    else:
        why = "allowed: " + ", ".join(sorted(values))
    return Outcome(Decision.FORWARDED, why, values)
