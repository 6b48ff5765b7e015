"""A Salesforce notification: what goes to HubSpot (CONTRACT §5 rules 4, 5, 6, 8, 9)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from syncgate.inbox.store import salesforce_time_ms
from syncgate.sync.contacts import ContactState
from syncgate.sync.decide.outcomes import Decision, Membership, Outcome, ignored
from syncgate.sync.decide.values import blank_in_salesforce, same_in_salesforce, same_value
from syncgate.sync.mapping import Mapping as FieldMapping
from syncgate.sync.mapping import salesforce_field
from syncgate.sync.models import SyncRule

SUPPORTED_OBJECTS = ("Lead", "Contact")
SYSTEM_FIELDS = frozenset(
    {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "IsConverted"}
)


def is_creation(fields: Mapping[str, str | None], record_known: bool) -> bool:
    """CONTRACT §4: CreatedDate equals LastModifiedDate to the second; else an unknown record."""
    created_ms = salesforce_time_ms(fields.get("CreatedDate"))
    modified_ms = salesforce_time_ms(fields.get("LastModifiedDate"))
    if created_ms is None or modified_ms is None:
        return not record_known
    return created_ms // 1000 == modified_ms // 1000


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
    # Deliveries whose echo this may be: (delivery id, the fields it wrote, by field name; empty
    # for a write `previous` already shows).
    echo_candidates: Sequence[tuple[int, Mapping[str, object]]] = ()


def salesforce_change(
    contact: ContactState | None,
    *,
    object_type: str,
    record_id: str,
    fields: Mapping[str, str | None],
    modified_ms: int,
    create_allowed: bool,
    imported: bool = False,
    echo_candidates: Sequence[tuple[int, Mapping[str, object]]] = (),
) -> SalesforceChange:
    """The gate's input for a Salesforce record's values next to the matched contact (None: no
    contact matched). `imported`: an operator's import, which treats every record as new."""
    record_known = contact is not None and contact.salesforce_id == record_id
    known = record_known and not imported
    return SalesforceChange(
        object_type=object_type,
        fields=fields,
        previous=dict(contact.salesforce_values) if known and contact else None,
        hubspot_properties=contact.property_values() if contact else {},
        hubspot_changed_at=(
            {name: p.changed_at_ms for name, p in contact.properties.items()}
            if contact and not imported
            else {}
        ),
        modified_ms=modified_ms,
        creation=imported or is_creation(fields, record_known),
        hubspot_contact_known=contact is not None and contact.hubspot_id is not None,
        create_allowed=imported or create_allowed,
        stale=known and contact is not None and modified_ms < (contact.salesforce_modified_ms or 0),
        echo_candidates=() if imported else echo_candidates,
    )


def _echoes(change: SalesforceChange, written: Mapping[str, object], mapped: set[str]) -> bool:
    """Every mapped field carries what the delivery wrote, or what was known before."""
    previous = change.previous or {}
    return all(
        same_in_salesforce(value, written[name] if name in written else previous.get(name))
        for name, value in change.fields.items()
        if name in mapped
    )


def gate_salesforce_change(
    change: SalesforceChange, membership: Membership, mappings: Sequence[FieldMapping]
) -> Outcome:
    """Decide whether a Salesforce change goes to HubSpot and with which property values."""
    if change.stale:
        return Outcome(Decision.SKIPPED_STALE, "older than the record version already applied")
    mapped = {
        name for m in mappings if (name := salesforce_field(m, change.object_type)) is not None
    }
    for delivery_id, written in change.echo_candidates:
        if _echoes(change, written, mapped):
            return Outcome(
                Decision.SKIPPED_NO_CHANGE,
                f"echo of delivery {delivery_id}: Salesforce sends back the values syncgate wrote",
            )
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
        if blank_in_salesforce(change.fields.get("Email")):
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
        if same_in_salesforce(value, change.hubspot_properties.get(prop)):
            continue
        newer_in_hubspot = change.hubspot_changed_at.get(prop, 0) > change.modified_ms
        if mapping.rule is SyncRule.TWO_WAY and newer_in_hubspot and not creates:
            continue  # two-way: the most recent value wins
        values[prop] = None if blank_in_salesforce(value) else value
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


# -- before the gate ---------------------------------------------------------------------------


def unsupported_object(object_type: str) -> Outcome:
    return ignored(f"{object_type} records are not synced")


def converted_lead() -> Outcome:
    return ignored("converted Lead: the contact follows the converted Contact")


def hubspot_contact_deleted() -> Outcome:
    return ignored("the HubSpot contact is deleted; it is never recreated (rule 9)")


# -- import: HubSpot's own behaviour (reference/hubspot.md §4.4) --------------------------------


def import_outcome(
    change: SalesforceChange, membership: Membership, email: str, mappings: Sequence[FieldMapping]
) -> Outcome:
    """An imported record brings only its email into HubSpot, unless the contact may sync (no
    inclusion segment, or a member), when every mapped field follows."""
    full = gate_salesforce_change(change, Membership(None), mappings)
    if membership.allows_sync:
        return full
    if change.hubspot_contact_known:
        return Outcome(
            Decision.SKIPPED_NOT_IN_SEGMENT,
            "imported: outside the inclusion segment, so no field is synced",
        )
    return Outcome(
        Decision.CREATED_OUTSIDE_SEGMENT,
        "imported with only the email: outside the inclusion segment the other fields stay blank",
        {"email": email},
    )
