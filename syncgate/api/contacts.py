"""Contacts read routes (§6)."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from syncgate.api import examples
from syncgate.api.deps import ADMIN_RESPONSES, AdminDep, SessionDep, SettingsDep
from syncgate.api.examples import answers
from syncgate.api.paging import Cursor, Limit, encode_cursor
from syncgate.errors import NotFound, error_responses
from syncgate.sync.contacts import normalise_email
from syncgate.sync.models import Contact
from syncgate.sync.schemas import ContactOut, ContactPage, Email, RowId, SyncStatusOut
from syncgate.sync.status import sync_status

router = APIRouter(
    prefix="/api/contacts",
    tags=["contacts"],
    dependencies=[AdminDep],
    responses=ADMIN_RESPONSES,
)


@router.get(
    "",
    summary="List or find contacts",
    responses=error_responses(422) | answers(200, examples.CONTACT_PAGE),
)
async def list_contacts(
    session: SessionDep,
    after: Cursor,
    email: Annotated[Email | None, Query(description="exact, any case; blank = any")] = None,
    limit: Limit = 100,
) -> ContactPage:
    """Stored contacts in id order, a page at a time (`next` → `after`); `email` finds one
    by address, in any case."""
    query = select(Contact).order_by(Contact.id).limit(limit + 1)
    normalised = normalise_email(email)
    if normalised is not None:
        query = query.where(Contact.email == normalised)
    if after is not None:
        query = query.where(Contact.id > after)
    rows = (await session.scalars(query)).all()
    last = rows[limit - 1].id if len(rows) > limit else None
    return ContactPage(items=[ContactOut.of(c) for c in rows[:limit]], next=encode_cursor(last))


@router.get(
    "/{contact_id}",
    summary="Get a contact",
    responses=error_responses(404) | answers(200, examples.CONTACT),
)
async def get_contact(contact_id: RowId, session: SessionDep) -> ContactOut:
    """A contact with its HubSpot properties and its Salesforce link, also after a deletion."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} does not exist")
    return ContactOut.of(contact)


@router.get(
    "/{contact_id}/sync-status",
    summary="Why a contact does or does not sync",
    responses=error_responses(404) | answers(200, examples.SYNC_STATUS),
)
async def get_sync_status(
    contact_id: RowId, session: SessionDep, settings: SettingsDep
) -> SyncStatusOut:
    """Whether the gate would let the contact's changes through, in plain words (segment
    membership, deletion, dead deliveries, a platform that is not connected), with its latest
    decisions and pending deliveries."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} does not exist")
    return SyncStatusOut.model_validate(await sync_status(session, contact, settings))
