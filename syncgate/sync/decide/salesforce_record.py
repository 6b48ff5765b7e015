"""The fields a forwarded change writes into a Salesforce record (CONTRACT §5 rules 7, 8)."""

from collections.abc import Mapping, Sequence
from typing import Any

from syncgate.sync.decide.values import NOT_PROVIDED, blank, same_value
from syncgate.sync.mapping import Mapping as FieldMapping
from syncgate.sync.mapping import salesforce_field, to_salesforce_fields
from syncgate.sync.models import SyncRule

REQUIRED_FIELDS = {"Lead": ("LastName", "Company"), "Contact": ("LastName",)}


def fields_to_create(
    values: dict[str, Any], object_type: str, mappings: Sequence[FieldMapping]
) -> dict[str, Any]:
    """A new record gets every value; a Lead without a company or last name gets
    `[not provided]` (rule 7)."""
    fields = to_salesforce_fields(values, object_type, mappings)
    for name in REQUIRED_FIELDS[object_type]:
        if blank(fields.get(name)):
            fields[name] = NOT_PROVIDED
    return fields


def fields_to_update(
    values: dict[str, Any],
    object_type: str,
    mappings: Sequence[FieldMapping],
    found: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An existing record gets the values; one found by email (`found`: its values) keeps what
    it already has and what it owns under prefer-Salesforce rules (rule 8). Clearing a required
    field in HubSpot writes `[not provided]`, so the whole write does not fail."""
    fields = to_salesforce_fields(values, object_type, mappings)
    if found is not None:
        preferred = {
            salesforce_field(m, object_type)
            for m in mappings
            if m.rule is SyncRule.PREFER_SALESFORCE_UNLESS_BLANK
        }
        fields = {
            name: value
            for name, value in fields.items()
            if not same_value(value, found.get(name))
            and not (name in preferred and found.get(name) not in (None, ""))
        }
    for name in REQUIRED_FIELDS[object_type]:
        if name in fields and blank(fields[name]):
            fields[name] = NOT_PROVIDED
    return fields
