"""The contact mirror: HubSpot property values with the time each last changed."""

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.sync.filters import fold, numeric_value
from syncgate.sync.models import Contact, ContactProperty

# The length of the `email` column; a longer value is no address (RFC 5321 allows 254).
EMAIL_MAX_LENGTH = 320


def normalise_email(email: str | None) -> str | None:
    """The address as stored and matched, or None when the value is blank or too long."""
    email = (email or "").strip().lower()
    if len(email) > EMAIL_MAX_LENGTH:
        return None
    return email or None


async def find_by_hubspot_id(session: AsyncSession, hubspot_id: str) -> Contact | None:
    return await session.scalar(select(Contact).where(Contact.hubspot_id == hubspot_id))


async def find_by_email(session: AsyncSession, email: str) -> list[Contact]:
    normalised = normalise_email(email)
    if normalised is None:
        return []
    result = await session.scalars(
        select(Contact).where(Contact.email == normalised).order_by(Contact.id)
    )
    return list(result)


@dataclass(frozen=True)
class PropertyUpdate:
    changed: frozenset[str]  # names whose stored value this update altered
    stale: frozenset[str]  # names it would have altered but whose stored value is newer


def apply_properties(
    contact: Contact, values: Mapping[str, str | None], changed_at_ms: int
) -> PropertyUpdate:
    """Set property values changed at `changed_at_ms`; an older change never overwrites a newer
    one, and a value equal to the stored one is no change whatever its age."""
    current = {prop.name: prop for prop in contact.properties}
    changed: set[str] = set()
    stale: set[str] = set()
    for name, raw in values.items():
        # PostgreSQL text cannot hold NUL; HubSpot never means one.
        value = raw.replace("\x00", "") if raw else None
        value = value or None
        existing = current.get(name)
        if existing is None:
            contact.properties.append(
                ContactProperty(
                    name=name,
                    value=value,
                    value_folded=fold(value),
                    value_number=numeric_value(value),
                    changed_at_ms=changed_at_ms,
                )
            )
            changed.add(name)
        elif existing.value == value:
            existing.changed_at_ms = max(existing.changed_at_ms, changed_at_ms)
        elif changed_at_ms < existing.changed_at_ms:
            stale.add(name)
        else:
            existing.changed_at_ms = changed_at_ms
            existing.value = value
            existing.value_folded = fold(value)
            existing.value_number = numeric_value(value)
            changed.add(name)
    if "email" in changed:
        contact.email = normalise_email(contact.property_values().get("email"))
    return PropertyUpdate(frozenset(changed), frozenset(stale))


async def upsert_hubspot_contact(
    session: AsyncSession,
    hubspot_id: str,
    values: Mapping[str, str | None],
    changed_at_ms: int,
) -> Contact:
    """Find or create the mirror of a HubSpot contact and apply property values to it."""
    contact = await find_by_hubspot_id(session, hubspot_id)
    if contact is None:
        contact = Contact(hubspot_id=hubspot_id, properties=[])
        session.add(contact)
    apply_properties(contact, values, changed_at_ms)
    await session.flush()
    return contact


async def count_contacts(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Contact)) or 0
