"""Field mappings between HubSpot contact properties and Salesforce Lead/Contact fields."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.db import insert_ignoring_conflicts
from syncgate.sync.models import FieldMapping, SyncRule


@dataclass(frozen=True)
class Mapping:
    hubspot_property: str
    lead_field: str | None
    contact_field: str | None
    rule: SyncRule


def salesforce_field(mapping: Mapping, object_type: str) -> str | None:
    """The field of a Lead or a Contact that a HubSpot property maps to (None: not mapped)."""
    return mapping.lead_field if object_type == "Lead" else mapping.contact_field


def to_salesforce_fields(
    values: dict[str, Any], object_type: str, mappings: Sequence[Mapping]
) -> dict[str, Any]:
    """HubSpot property → value, as Salesforce field name → value for `object_type`."""
    fields: dict[str, Any] = {}
    for mapping in mappings:
        if mapping.hubspot_property in values:
            target = salesforce_field(mapping, object_type)
            if target is not None:
                fields[target] = values[mapping.hubspot_property]
    return fields


EMAIL_MAPPING = Mapping("email", "Email", "Email", SyncRule.TWO_WAY)

# Modelled on the default contact mappings of HubSpot's own connector (reference/hubspot.md §4.5),
# limited to standard HubSpot properties whose values carry over as they are: picklists such as
# Lead Status or employee ranges have different options on each side and need a custom mapping.
DEFAULT_MAPPINGS: tuple[Mapping, ...] = (
    EMAIL_MAPPING,
    Mapping("firstname", "FirstName", "FirstName", SyncRule.TWO_WAY),
    Mapping("lastname", "LastName", "LastName", SyncRule.TWO_WAY),
    Mapping("salutation", "Salutation", "Salutation", SyncRule.TWO_WAY),
    Mapping("jobtitle", "Title", "Title", SyncRule.TWO_WAY),
    Mapping("company", "Company", None, SyncRule.TWO_WAY),
    Mapping("phone", "Phone", "Phone", SyncRule.TWO_WAY),
    Mapping("mobilephone", "MobilePhone", "MobilePhone", SyncRule.TWO_WAY),
    Mapping("fax", "Fax", "Fax", SyncRule.TWO_WAY),
    Mapping("address", "Street", "MailingStreet", SyncRule.TWO_WAY),
    Mapping("city", "City", "MailingCity", SyncRule.TWO_WAY),
    Mapping("state", "State", "MailingState", SyncRule.TWO_WAY),
    Mapping("zip", "PostalCode", "MailingPostalCode", SyncRule.TWO_WAY),
    Mapping("country", "Country", "MailingCountry", SyncRule.TWO_WAY),
    Mapping("website", "Website", None, SyncRule.TWO_WAY),
    Mapping("industry", "Industry", None, SyncRule.TWO_WAY),
    Mapping("annualrevenue", "AnnualRevenue", None, SyncRule.TWO_WAY),
)


def _rows(mappings: Sequence[Mapping]) -> list[dict[str, object]]:
    return [
        {
            "position": position,
            "hubspot_property": mapping.hubspot_property,
            "lead_field": mapping.lead_field,
            "contact_field": mapping.contact_field,
            "rule": mapping.rule.value,
        }
        for position, mapping in enumerate(mappings)
    ]


def _from_row(row: FieldMapping) -> Mapping:
    return Mapping(row.hubspot_property, row.lead_field, row.contact_field, SyncRule(row.rule))


async def load_mappings(session: AsyncSession) -> list[Mapping]:
    """The mappings in force; the defaults are stored the first time they are needed."""
    rows = (await session.scalars(select(FieldMapping).order_by(FieldMapping.position))).all()
    if not rows:
        # Two first readers may race; the unique property name makes the loser a no-op.
        await session.execute(
            insert_ignoring_conflicts(session, FieldMapping, _rows(DEFAULT_MAPPINGS))
        )
        rows = (await session.scalars(select(FieldMapping).order_by(FieldMapping.position))).all()
    return [_from_row(row) for row in rows]


async def replace_mappings(session: AsyncSession, mappings: Sequence[Mapping]) -> list[Mapping]:
    """Replace the whole list; email stays mapped even when the new list leaves it out."""
    if not any(mapping.hubspot_property == "email" for mapping in mappings):
        mappings = [EMAIL_MAPPING, *mappings]
    await session.execute(delete(FieldMapping))
    session.add_all(FieldMapping(**row) for row in _rows(mappings))
    await session.flush()
    return list(mappings)
