"""A change in HubSpot: what goes to Salesforce (CONTRACT §5 rules 1-3, 6-9)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncgate.sync.contacts import ContactState
from syncgate.sync.decide.outcomes import Decision, Membership, Outcome, ignored
from syncgate.sync.decide.values import blank, same_value
from syncgate.sync.mapping import Mapping as FieldMapping
from syncgate.sync.mapping import salesforce_field
from syncgate.sync.models import SyncRule


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


def hubspot_change(
    contact: ContactState,
    mappings: Sequence[FieldMapping],
    *,
    new_contacts_as: str,
    changed: frozenset[str] = frozenset(),
    stale: bool = False,
    full: bool = False,
    queued: Sequence[Mapping[str, Any]] = (),
    properties: Mapping[str, str | None] | None = None,
) -> HubSpotChange:
    """The gate's input for a change to `contact` (the mirror after the change), with the values
    of its queued Salesforce deliveries (oldest first, so later values win)."""
    object_type = contact.salesforce_object or new_contacts_as
    queued_values: dict[str, object] = {}
    if queued:
        fields = {m.hubspot_property: salesforce_field(m, object_type) for m in mappings}
        for values in queued:
            for prop, value in values.items():
                if (name := fields.get(prop)) is not None:
                    queued_values[name] = value
    return HubSpotChange(
        changed=changed,
        properties=contact.property_values() if properties is None else properties,
        salesforce_object=object_type,
        linked=contact.salesforce_id is not None,
        salesforce_values=contact.salesforce_values,
        stale=stale,
        full=full,
        queued_values=queued_values,
    )


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
    if candidates and not change.linked and blank(change.properties.get("email")):
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
        if rules[prop] is SyncRule.PREFER_SALESFORCE_UNLESS_BLANK and not blank(theirs):
            continue
        expected = change.queued_values.get(syncable[prop], theirs)
        if not change.linked and blank(value) and blank(expected):
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


# -- before the gate: events that decide nothing about values ---------------------------------


def from_other_portal(portal_id: int, ours: int) -> Outcome:
    return ignored(f"event from portal {portal_id}, not portal {ours}")


def unsupported_event(kind: str) -> Outcome:
    return ignored(f"unsupported event {kind!r}")


def deleted_contact_changed() -> Outcome:
    return ignored("contact is deleted in HubSpot")


def creation_unreadable(error: str) -> Outcome:
    return ignored(f"cannot read the new contact from HubSpot: {error}")


def creation_gone() -> Outcome:
    return ignored("the contact no longer exists in HubSpot")


def deleted(*, privacy: bool, restored_since: bool) -> Outcome:
    """Rule 9: the Salesforce record is never deleted and the link is kept."""
    reason = (
        "privacy deletion" if privacy else "deleted"
    ) + " in HubSpot; the Salesforce record is never deleted and the link is kept (rule 9)"
    if restored_since:
        reason += "; it has been restored since"
    return ignored(reason)


def restored() -> Outcome:
    return ignored("restored in HubSpot; later changes sync again under the gate")


def merged(survivor_id: str) -> Outcome:
    return ignored(f"merged into HubSpot contact {survivor_id}, which keeps the Salesforce link")


# -- resync: every member, in full -------------------------------------------------------------

# A resync counts a member as succeeded when it passes the gate, whether or not it differs.
RESYNC_PASSED = (Decision.FORWARDED, Decision.SKIPPED_NO_CHANGE)


def resync_outcome(
    contact: ContactState,
    change: HubSpotChange,
    membership: Membership,
    mappings: Sequence[FieldMapping],
) -> Outcome:
    """A segment resync sends every mapped property of a member that passes the gate."""
    if contact.hubspot_deleted_at is not None:
        return ignored("deleted in HubSpot")
    return gate_hubspot_change(change, membership, mappings)
