"""HubSpot webhook event bodies: validation and the key that makes each event unique."""

import hashlib
import json
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import from_json

MAX_EVENTS_PER_REQUEST = 1000
# Values stored in BIGINT columns (occurred_at_ms) or in the 64-character object_key.
_MAX_INT64 = 2**63 - 1
# Record ids become `hubspot_id` (32 characters) and `object_key`: at most a signed 64-bit int.
_RecordId = Annotated[int, Field(ge=-_MAX_INT64, le=_MAX_INT64)]
# The last millisecond of 9999-12-31: later times are no datetime (processing converts them).
_MAX_TIME_MS = 253_402_300_799_999

SUBSCRIPTION_TYPES = frozenset(
    {
        "contact.creation",
        "contact.propertyChange",
        "contact.deletion",
        "contact.privacyDeletion",
        "contact.merge",
        "contact.restore",
    }
)


class HubSpotEvent(BaseModel):
    """One event of a webhook body; unknown keys are kept (HubSpot adds fields over time)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_id: int = Field(alias="eventId")
    subscription_id: int | None = Field(default=None, alias="subscriptionId")
    portal_id: int = Field(alias="portalId")
    app_id: int | None = Field(default=None, alias="appId")
    occurred_at: int = Field(alias="occurredAt", ge=0, le=_MAX_TIME_MS)
    # Real deliveries say `subscriptionType`; HubSpot's own documented example says `eventType`.
    # No control characters: the value is stored in a text column (PostgreSQL refuses NUL).
    subscription_type: str = Field(
        alias="subscriptionType",
        validation_alias=AliasChoices("subscriptionType", "eventType", "subscription_type"),
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    )
    attempt_number: int = Field(default=0, alias="attemptNumber")
    object_id: _RecordId = Field(alias="objectId")
    change_source: str | None = Field(default=None, alias="changeSource")
    source_id: str | None = Field(default=None, alias="sourceId")
    change_flag: str | None = Field(default=None, alias="changeFlag")
    # A property name is a key of the contact's stored properties: no NUL (PostgreSQL text).
    property_name: str | None = Field(
        default=None, alias="propertyName", max_length=255, pattern=r"^[^\x00]*$"
    )
    property_value: str | None = Field(default=None, alias="propertyValue")
    merged_object_ids: list[_RecordId] | None = Field(default=None, alias="mergedObjectIds")
    primary_object_id: _RecordId | None = Field(default=None, alias="primaryObjectId")
    new_object_id: _RecordId | None = Field(default=None, alias="newObjectId")


_body_adapter = TypeAdapter(list[dict[str, Any]])
_event_adapter = TypeAdapter(HubSpotEvent)


class InvalidBody(ValueError):
    """The body is not a JSON array of HubSpot events."""


def parse_body(body: bytes) -> list[tuple[HubSpotEvent, dict[str, Any]]]:
    """Each event parsed, next to the raw object it came from."""
    try:
        # NaN and Infinity are not JSON, and no store can keep them in a JSON column.
        raw_events = _body_adapter.validate_python(from_json(body, allow_inf_nan=False))
    except (ValueError, ValidationError):
        raise InvalidBody("body must be a JSON array of event objects") from None
    if len(raw_events) > MAX_EVENTS_PER_REQUEST:
        raise InvalidBody(f"at most {MAX_EVENTS_PER_REQUEST} events per request")
    parsed = []
    for index, raw in enumerate(raw_events):
        try:
            # A number too large for a float (1e400) parses as infinity.
            json.dumps(raw, allow_nan=False)
        except ValueError:
            raise InvalidBody(f"event [{index}]: numbers must be finite") from None
        try:
            parsed.append((_event_adapter.validate_python(raw), raw))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidBody(f"event [{index}] {where}: {first['msg']}") from None
    return parsed


def dedup_key(raw_event: dict[str, Any]) -> str:
    """A key equal for redeliveries of one event and different for distinct events.

    `eventId` alone is not unique (one change fans out to several subscriptions with the same
    id), and a redelivery differs only in `attemptNumber`; so the key is a digest of the whole
    event without `attemptNumber`.
    """
    identity = {key: value for key, value in raw_event.items() if key != "attemptNumber"}
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
