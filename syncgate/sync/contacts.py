"""The contact mirror in memory: HubSpot property values with the time each last changed, and
the Salesforce record the contact is linked to. Loaded and written in bulk by `sync.batch`."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncgate.sync.filters import fold, numeric_value

# The length of the `email` column; a longer value is no address (RFC 5321 allows 254).
EMAIL_MAX_LENGTH = 320


def normalise_email(email: str | None) -> str | None:
    """The address as stored and matched, or None when the value is blank or too long."""
    email = (email or "").strip().lower()
    if len(email) > EMAIL_MAX_LENGTH:
        return None
    return email or None


@dataclass(slots=True)
class StoredProperty:
    value: str | None
    # HubSpot's occurredAt (ms) of the change that set this value; older changes never win.
    changed_at_ms: int

    def row(self, contact_id: int, name: str) -> dict[str, Any]:
        """The `contact_properties` row, with the forms segment filters compare."""
        return {
            "contact_id": contact_id,
            "name": name,
            "value": self.value,
            "value_folded": fold(self.value),
            "value_number": numeric_value(self.value),
            "changed_at_ms": self.changed_at_ms,
        }


# The columns of `contacts` a ContactState carries, in the order `saved` snapshots them.
COLUMNS = (
    "hubspot_id",
    "email",
    "salesforce_id",
    "salesforce_object",
    "salesforce_values",
    "salesforce_modified_ms",
    "salesforce_echo_of",
    "hubspot_deleted_at",
    "merged_into_id",
)


class ContactState:
    """One person as the service knows them, as plain Python: what processing, jobs and
    settling change in memory before `ContactBatch.write` stores it."""

    __slots__ = (*COLUMNS, "changed_properties", "id", "properties", "saved")

    def __init__(
        self,
        *,
        id: int | None = None,
        hubspot_id: str | None = None,
        email: str | None = None,
        salesforce_id: str | None = None,
        salesforce_object: str | None = None,
        salesforce_values: dict[str, Any] | None = None,
        salesforce_modified_ms: int | None = None,
        salesforce_echo_of: int | None = None,
        hubspot_deleted_at: datetime | None = None,
        merged_into_id: int | None = None,
    ) -> None:
        self.id = id
        self.hubspot_id = hubspot_id
        self.email = email
        self.salesforce_id = salesforce_id
        self.salesforce_object = salesforce_object
        self.salesforce_values: dict[str, Any] = salesforce_values or {}
        self.salesforce_modified_ms = salesforce_modified_ms
        # The delivery whose write `salesforce_values` shows until a notification confirms it.
        self.salesforce_echo_of = salesforce_echo_of
        self.hubspot_deleted_at = hubspot_deleted_at
        self.merged_into_id = merged_into_id
        self.properties: dict[str, StoredProperty] = {}
        self.changed_properties: set[str] = set()
        # The columns as stored (None for a contact not inserted yet).
        self.saved: tuple[Any, ...] | None = None

    def columns(self) -> tuple[Any, ...]:
        """The values of COLUMNS, in that order."""
        return (
            self.hubspot_id,
            self.email,
            self.salesforce_id,
            self.salesforce_object,
            self.salesforce_values,
            self.salesforce_modified_ms,
            self.salesforce_echo_of,
            self.hubspot_deleted_at,
            self.merged_into_id,
        )

    def mark_saved(self) -> None:
        saved = self.columns()
        # A copy of the JSON column, so changing it in place still shows as a change.
        self.saved = (*saved[:4], dict(self.salesforce_values), *saved[5:])
        self.changed_properties.clear()

    def property_values(self) -> dict[str, str | None]:
        return {name: stored.value for name, stored in self.properties.items()}

    def __repr__(self) -> str:
        return f"ContactState(id={self.id}, hubspot_id={self.hubspot_id}, email={self.email})"


@dataclass(frozen=True)
class PropertyUpdate:
    changed: frozenset[str]  # names whose stored value this update altered
    stale: frozenset[str]  # names it would have altered but whose stored value is newer


def apply_properties(
    contact: ContactState, values: Mapping[str, str | None], changed_at_ms: int
) -> PropertyUpdate:
    """Set property values changed at `changed_at_ms`; an older change never overwrites a newer
    one, and a value equal to the stored one is no change whatever its age."""
    stored = contact.properties
    changed: set[str] = set()
    stale: set[str] = set()
    for name, raw in values.items():
        # PostgreSQL text cannot hold NUL; HubSpot never means one.
        value = raw.replace("\x00", "") if raw else None
        value = value or None
        existing = stored.get(name)
        if existing is None:
            stored[name] = StoredProperty(value, changed_at_ms)
            changed.add(name)
        elif existing.value == value:
            if changed_at_ms > existing.changed_at_ms:
                existing.changed_at_ms = changed_at_ms
                contact.changed_properties.add(name)
            continue
        elif changed_at_ms < existing.changed_at_ms:
            stale.add(name)
            continue
        else:
            existing.value = value
            existing.changed_at_ms = changed_at_ms
            changed.add(name)
        contact.changed_properties.add(name)
    if "email" in changed:
        contact.email = normalise_email(stored["email"].value)
    return PropertyUpdate(frozenset(changed), frozenset(stale))


def apply_read(
    contact: ContactState, values: Mapping[str, str | None], updated_at_ms: int
) -> PropertyUpdate:
    """Apply a contact as read from HubSpot, last modified at `updated_at_ms`.

    A blank the store has no value for is left out: HubSpot dates only the contact, so the blank
    would claim to be as recent as the contact's latest change (and win over an older value from
    Salesforce) although nothing was ever set.
    """
    known = contact.properties
    present = {k: v for k, v in values.items() if v or k in known}
    return apply_properties(contact, present, updated_at_ms)


def link_record(contact: ContactState, object_type: str, record_id: str, modified_ms: int) -> bool:
    """Point the contact at this Salesforce record unless it follows a more recently modified
    one (rule 6: the most recently modified record wins)."""
    if contact.salesforce_id == record_id:
        return True
    if contact.salesforce_id is not None and modified_ms < (contact.salesforce_modified_ms or 0):
        return False
    contact.salesforce_id = record_id
    contact.salesforce_object = object_type
    contact.salesforce_values = {}
    contact.salesforce_modified_ms = None
    contact.salesforce_echo_of = None
    return True
