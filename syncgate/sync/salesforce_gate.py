"""The gate for Salesforce → HubSpot (CONTRACT §5 rules 4, 5, 6, 8, 9): pure, like gate.py."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from syncgate.sync.gate import Decision, Membership, Outcome, salesforce_field, same_value
from syncgate.sync.mapping import Mapping as FieldMapping
from syncgate.sync.models import SyncRule

# Written by syncgate into required Lead fields HubSpot left blank; it means "no value".
NOT_PROVIDED = "[not provided]"
SYSTEM_FIELDS = frozenset(
    {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "IsConverted"}
)


@dataclass(frozen=True)
class SalesforceChange:
    """A Salesforce notification about one Lead or Contact, next to what the mirror knows."""

    object_type: str
    fields: Mapping[str, str | None]  # the record's values as notified (absent = not sent)
    previous: Mapping[str, object] | None  # last known values of this record, None if unknown
    hubspot_properties: Mapping[str, str | None]  # the HubSpot contact's values
    hubspot_changed_at: Mapping[str, int]  # when each HubSpot value last changed (ms)
    modified_ms: int  # the record's LastModifiedDate
    creation: bool
    hubspot_contact_known: bool
    create_allowed: bool  # create_hubspot_contacts_from for this object type
    stale: bool = False


def _blank(value: object) -> bool:
    return value is None or str(value).strip() in ("", NOT_PROVIDED)


def _same(salesforce_value: object, hubspot_value: object) -> bool:
    if _blank(salesforce_value) and _blank(hubspot_value):
        return True
    return same_value(salesforce_value, hubspot_value)


def gate_salesforce_change(
    change: SalesforceChange, membership: Membership, mappings: Sequence[FieldMapping]
) -> Outcome:
    """Decide whether a Salesforce change goes to HubSpot and with which property values."""
    if change.stale:
        return Outcome(Decision.SKIPPED_STALE, "older than the record version already applied")
    outside = not membership.allows_sync
    creates = change.creation and change.create_allowed
    if change.creation and not change.create_allowed and not change.hubspot_contact_known:
        return Outcome(
            Decision.IGNORED,
            f"new {change.object_type} and creating HubSpot contacts from "
            f"{change.object_type.lower()}s is off",
        )
    if outside and not creates:
        return Outcome(
            Decision.SKIPPED_NOT_IN_SEGMENT,
            f"the HubSpot contact is not a member of inclusion segment "
            f"{membership.inclusion_segment_id}",
        )
    if not change.hubspot_contact_known:
        if not change.create_allowed:
            return Outcome(
                Decision.IGNORED,
                f"no matching HubSpot contact and creating them from "
                f"{change.object_type.lower()}s is off",
            )
        if _blank(change.fields.get("Email")):
            return Outcome(Decision.IGNORED, "no email: a HubSpot contact cannot be created")

    synced = {
        field: m
        for m in mappings
        if m.rule is not SyncRule.DONT_SYNC
        and (field := salesforce_field(m, change.object_type)) is not None
        and field in change.fields
    }
    # With a known version of this record (one syncgate wrote, say), only fields that changed in
    # Salesforce count; a record seen for the first time brings every mapped field (rule 5).
    if change.previous is None:
        moved = set(change.fields) - SYSTEM_FIELDS
    else:
        moved = {
            f
            for f, value in change.fields.items()
            if f not in SYSTEM_FIELDS and not same_value(value, change.previous.get(f))
        }
    candidates = moved & set(synced)
    if not candidates:
        if moved:
            return Outcome(
                Decision.SKIPPED_UNMAPPED,
                "only fields without a Salesforce → HubSpot mapping changed: "
                + ", ".join(sorted(moved)),
            )
        return Outcome(Decision.SKIPPED_NO_CHANGE, "no field value changed in Salesforce")

    values: dict[str, str | None] = {}
    for field in sorted(candidates):
        mapping = synced[field]
        prop = mapping.hubspot_property
        value = change.fields[field]
        theirs = change.hubspot_properties.get(prop)
        if _same(value, theirs):
            continue
        newer_in_hubspot = change.hubspot_changed_at.get(prop, 0) > change.modified_ms
        if mapping.rule is SyncRule.TWO_WAY and newer_in_hubspot and not creates:
            continue  # two-way: the most recent value wins
        values[prop] = None if _blank(value) else value
    if not values:
        return Outcome(Decision.SKIPPED_NO_CHANGE, "HubSpot already has these values")
    if not change.hubspot_contact_known:
        values.setdefault("email", change.fields.get("Email"))
    if creates and outside:
        return Outcome(
            Decision.CREATED_OUTSIDE_SEGMENT,
            f"new {change.object_type}: synced to HubSpot although outside the inclusion "
            "segment (auto-create is on); later updates are gated",
            values,
        )
    why = f"new {change.object_type}" if change.creation else "allowed"
    return Outcome(Decision.FORWARDED, f"{why}: " + ", ".join(sorted(values)), values)
