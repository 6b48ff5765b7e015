"""Settings, inclusion segment and field mappings routes (§6 Settings)."""

from fastapi import APIRouter, Response, status

from syncgate.api import examples
from syncgate.api.deps import ADMIN_RESPONSES, AdminDep, SessionDep
from syncgate.api.examples import answers
from syncgate.api.examples import body as body_example
from syncgate.errors import error_responses
from syncgate.sync import preferences
from syncgate.sync.mapping import Mapping, load_mappings, replace_mappings
from syncgate.sync.models import SyncSettings
from syncgate.sync.schemas import (
    CreateFrom,
    InclusionSegment,
    MappingItem,
    MappingList,
    SettingsOut,
    SettingsPatch,
)

router = APIRouter(
    prefix="/api", tags=["settings"], dependencies=[AdminDep], responses=ADMIN_RESPONSES
)


def _settings_out(row: SyncSettings) -> SettingsOut:
    return SettingsOut(
        inclusion_segment_id=row.inclusion_segment_id,
        create_hubspot_contacts_from=CreateFrom(
            leads=row.create_from_leads, contacts=row.create_from_contacts
        ),
        new_hubspot_contacts_as=row.new_contacts_as,
    )


@router.get(
    "/settings/inclusion-segment",
    summary="Get the inclusion segment",
    responses=answers(200, examples.INCLUSION_SEGMENT),
)
async def get_inclusion_segment(session: SessionDep) -> InclusionSegment:
    """The segment a contact must be in to sync; `null` means every contact may sync."""
    row = await preferences.load_settings(session)
    return InclusionSegment(segment_id=row.inclusion_segment_id)


@router.put(
    "/settings/inclusion-segment",
    summary="Set the inclusion segment",
    responses=error_responses(404, 422) | answers(200, examples.INCLUSION_SEGMENT),
    openapi_extra=body_example(examples.INCLUSION_SEGMENT),
)
async def put_inclusion_segment(body: InclusionSegment, session: SessionDep) -> InclusionSegment:
    """Only an active segment can be the inclusion segment (422 `segment_not_active`).
    Choosing it queues nothing: a contact that later joins it syncs in full."""
    row = await preferences.set_inclusion_segment(session, body.segment_id)
    return InclusionSegment(segment_id=row.inclusion_segment_id)


@router.delete(
    "/settings/inclusion-segment",
    summary="Clear the inclusion segment",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def clear_inclusion_segment(session: SessionDep) -> Response:
    """No inclusion segment: every contact may sync again. Queues nothing by itself."""
    await preferences.set_inclusion_segment(session, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/settings", summary="Get the sync settings", responses=answers(200, examples.SETTINGS))
async def get_settings(session: SessionDep) -> SettingsOut:
    """The inclusion segment, whether new Salesforce Leads and Contacts create HubSpot
    contacts, and what new HubSpot contacts become in Salesforce."""
    return _settings_out(await preferences.load_settings(session))


@router.patch(
    "/settings",
    summary="Change the sync settings",
    responses=error_responses(404, 422) | answers(200, examples.SETTINGS),
    openapi_extra=body_example(examples.SETTINGS_PATCH),
)
async def patch_settings(body: SettingsPatch, session: SessionDep) -> SettingsOut:
    """A JSON merge patch: only the keys sent change, nested objects merge."""
    row = await preferences.load_settings(session)
    if "inclusion_segment_id" in body.model_fields_set:
        row = await preferences.set_inclusion_segment(session, body.inclusion_segment_id)
    nested = body.create_hubspot_contacts_from
    if nested is not None:
        if "leads" in nested.model_fields_set:
            row.create_from_leads = nested.leads
        if "contacts" in nested.model_fields_set:
            row.create_from_contacts = nested.contacts
    if body.new_hubspot_contacts_as is not None:
        row.new_contacts_as = body.new_hubspot_contacts_as
    await session.flush()
    return _settings_out(row)


def _mapping_list(mappings: list[Mapping]) -> MappingList:
    return MappingList(
        items=[
            MappingItem(
                hubspot_property=m.hubspot_property,
                lead_field=m.lead_field,
                contact_field=m.contact_field,
                rule=m.rule,
            )
            for m in mappings
        ]
    )


@router.get(
    "/mappings", summary="Get the field mappings", responses=answers(200, examples.MAPPINGS)
)
async def get_mappings(session: SessionDep) -> MappingList:
    """Which HubSpot property maps to which Lead and Contact field, and the rule for each."""
    return _mapping_list(await load_mappings(session))


@router.put(
    "/mappings",
    summary="Replace the field mappings",
    responses=answers(200, examples.MAPPINGS),
    openapi_extra=body_example(examples.MAPPINGS),
)
async def put_mappings(body: MappingList, session: SessionDep) -> MappingList:
    """Replaces the whole list. Rules: `two_way`, `prefer_salesforce_unless_blank`,
    `always_salesforce`, `dont_sync`; `email` is always mapped."""
    mappings = [
        Mapping(item.hubspot_property, item.lead_field, item.contact_field, item.rule)
        for item in body.items
    ]
    return _mapping_list(await replace_mappings(session, mappings))
