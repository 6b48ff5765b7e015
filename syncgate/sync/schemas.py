"""Request and response bodies of the admin API for segments, settings, mappings and contacts."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from syncgate.sync.decide.outcomes import Decision, Direction
from syncgate.sync.models import Contact, Segment, SegmentStatus, SegmentType, SyncRule

# The INTEGER range of the id columns: a number outside it names no row, and the database
# drivers would fail to bind it rather than find nothing.
ROW_ID_MIN, ROW_ID_MAX = -(2**31), 2**31 - 1
RowId = Annotated[int, Field(ge=ROW_ID_MIN, le=ROW_ID_MAX)]
# PostgreSQL text cannot hold NUL, so such a string could be neither stored nor matched.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=NO_NUL)]
Email = Annotated[str, Field(max_length=320, pattern=NO_NUL)]
FieldName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]


class ContactOut(BaseModel):
    id: int
    email: str | None
    hubspot_id: str | None
    salesforce_id: str | None
    salesforce_object: str | None
    properties: dict[str, str | None]

    @classmethod
    def of(cls, contact: Contact) -> "ContactOut":
        return cls(
            id=contact.id,
            email=contact.email,
            hubspot_id=contact.hubspot_id,
            salesforce_id=contact.salesforce_id,
            salesforce_object=contact.salesforce_object,
            properties=dict(sorted(contact.property_values().items())),
        )


class ContactPage(BaseModel):
    items: list[ContactOut]
    next: str | None


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: SegmentType
    filter: Any = None


class SegmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    filter: Any = None

    @model_validator(mode="after")
    def _name_not_null(self) -> "SegmentPatch":
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class SegmentOut(BaseModel):
    id: int
    name: str
    type: SegmentType
    filter: Any
    status: SegmentStatus
    size: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, segment: Segment) -> "SegmentOut":
        return cls.model_validate(segment, from_attributes=True)


class SegmentList(BaseModel):
    items: list[SegmentOut]


class FilterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: Any


class PreviewOut(BaseModel):
    size: int
    sample: list[ContactOut]


class MembersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emails: Annotated[list[Email], Field(max_length=10_000)] | None = None
    contact_ids: Annotated[list[RowId], Field(max_length=10_000)] | None = None

    @model_validator(mode="after")
    def _exactly_one_list(self) -> "MembersIn":
        if (self.emails is None) == (self.contact_ids is None):
            raise ValueError("give exactly one of 'emails' or 'contact_ids'")
        return self


class MembersChangeOut(SegmentOut):
    changed: int = Field(description="members added or removed by this request")
    not_found: list[str | int] = Field(description="inputs that matched no contact")


class InclusionSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: RowId | None


class CreateFrom(BaseModel):
    leads: bool
    contacts: bool


class SettingsOut(BaseModel):
    inclusion_segment_id: int | None
    create_hubspot_contacts_from: CreateFrom
    new_hubspot_contacts_as: Literal["Lead", "Contact"]


class CreateFromPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: lax mode would read "no", "off" or 0 as a setting rather than refuse them.
    leads: StrictBool = None  # type: ignore[assignment]
    contacts: StrictBool = None  # type: ignore[assignment]


class SettingsPatch(BaseModel):
    """A JSON merge patch of the settings: absent keys stay, nested objects merge."""

    model_config = ConfigDict(extra="forbid")

    inclusion_segment_id: RowId | None = None
    create_hubspot_contacts_from: CreateFromPatch | None = None
    new_hubspot_contacts_as: Literal["Lead", "Contact"] | None = None

    @model_validator(mode="after")
    def _only_inclusion_segment_is_nullable(self) -> "SettingsPatch":
        for key in ("create_hubspot_contacts_from", "new_hubspot_contacts_as"):
            if key in self.model_fields_set and getattr(self, key) is None:
                raise ValueError(f"{key} cannot be null")
        nested = self.create_hubspot_contacts_from
        if nested is not None:
            for key in ("leads", "contacts"):
                if key in nested.model_fields_set and getattr(nested, key) is None:
                    raise ValueError(f"create_hubspot_contacts_from.{key} cannot be null")
        return self


class MappingItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hubspot_property: FieldName
    lead_field: FieldName | None
    contact_field: FieldName | None
    rule: SyncRule

    @model_validator(mode="after")
    def _maps_somewhere(self) -> "MappingItem":
        if self.lead_field is None and self.contact_field is None:
            raise ValueError("a mapping needs a lead_field, a contact_field or both")
        if self.hubspot_property == "email" and self.rule is SyncRule.DONT_SYNC:
            raise ValueError("email is always mapped: it is how records are matched")
        return self


class MappingList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[MappingItem]

    @model_validator(mode="after")
    def _unique_properties(self) -> "MappingList":
        names = [item.hubspot_property for item in self.items]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"each HubSpot property may be mapped once: {', '.join(duplicates)}")
        return self


class DecisionOut(BaseModel):
    id: int
    at: datetime
    direction: Direction
    decision: Decision
    contact_id: int | None
    source_event: str | None
    detail: dict[str, Any]


class DeadDeliveryOut(BaseModel):
    id: int
    target: str
    last_error: str | None


class SalesforceLink(BaseModel):
    id: str
    object: str | None


class SyncStatusOut(BaseModel):
    inclusion_segment_id: int | None
    in_inclusion_segment: bool | None
    would_sync: bool
    reason: str
    last_decisions: list[DecisionOut]
    pending_deliveries: int
    dead_deliveries: list[DeadDeliveryOut]
    salesforce: SalesforceLink | None
