"""The worker step that delivers queued changes to Salesforce in composite batches."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.delivery.base import Deliverer, Due, Result, Settled
from syncgate.delivery.models import Operation, Target
from syncgate.platforms.salesforce.client import (
    SalesforceClient,
    SalesforceError,
    SalesforceRecord,
)
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import ContactState
from syncgate.sync.decide.salesforce_record import fields_to_create, fields_to_update
from syncgate.sync.mapping import Mapping, load_mappings, salesforce_field
from syncgate.sync.models import Contact
from syncgate.sync.preferences import load_settings

log = logging.getLogger("syncgate.delivery.salesforce")

BATCH_SIZE = 200  # records per sObject Collections call
CONVERTED_LEAD = "CANNOT_UPDATE_CONVERTED_LEAD"


@dataclass
class Claimed:
    """A claimed delivery and what sending it needs, detached from the session."""

    id: int
    contact_id: int
    attempts: int
    values: dict[str, Any]
    email: str | None
    salesforce_id: str | None
    salesforce_object: str | None
    merged_into_id: int | None
    searched_emails: list[str] = field(default_factory=list)  # oldest first, current last
    # Filled while sending.
    object_type: str = ""
    record_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    found: SalesforceRecord | None = None
    converted_from: str | None = None  # the converted Lead this now writes to the Contact of


class SalesforceDeliverer(Deliverer[Claimed, SalesforceClient]):
    target = Target.SALESFORCE
    batch_size = BATCH_SIZE

    def __init__(
        self,
        config: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        client: SalesforceClient | None,
    ) -> None:
        super().__init__(config, session_factory, client)
        self.mappings: list[Mapping] = []
        self.new_as = "Lead"

    async def prepare(self, session: AsyncSession, due: Sequence[Due]) -> list[Claimed]:
        self.mappings = await load_mappings(session)
        self.new_as = (await load_settings(session)).new_contacts_as
        claimed = []
        for delivery in due:
            if delivery.salesforce_id is None and delivery.email:
                # Saved with the claim, before anything is sent.
                earlier = [e for e in delivery.searched_emails if e != delivery.email]
                delivery.searched_emails = [*earlier, delivery.email]
            claimed.append(
                Claimed(
                    id=delivery.id,
                    contact_id=delivery.contact_id,
                    attempts=delivery.attempts,
                    values=delivery.values,
                    email=delivery.email,
                    salesforce_id=delivery.salesforce_id,
                    salesforce_object=delivery.salesforce_object,
                    merged_into_id=delivery.merged_into_id,
                    searched_emails=list(delivery.searched_emails),
                )
            )
        return claimed

    async def send(self, claimed: list[Claimed]) -> dict[int, Result]:
        assert self.client is not None
        return await self._send(self.client, claimed, self.mappings, self.new_as)

    async def _send(
        self,
        client: SalesforceClient,
        claimed: list[Claimed],
        mappings: list[Mapping],
        new_as: str,
    ) -> dict[int, Result]:
        results: dict[int, Result] = {}
        unlinked = [c for c in claimed if c.salesforce_id is None]
        try:
            found = await self._find_existing(client, unlinked, mappings)
        except SalesforceError as error:
            # One failed call, whatever the number of deliveries waiting on it.
            failure = Result.failed(error)
            return {c.id: failure for c in claimed}
        owners = await self._owners({record.id for record in found.values()})

        creates: list[Claimed] = []
        updates: list[Claimed] = []
        for item in claimed:
            if item.salesforce_id is not None:
                item.object_type = item.salesforce_object or new_as
                item.record_id = item.salesforce_id
                item.fields = fields_to_update(item.values, item.object_type, mappings)
            elif (record := _found_for(item, found)) is not None:
                owner = owners.get(record.id)
                if owner is not None and owner not in (item.contact_id, item.merged_into_id):
                    # Never write one contact's values over the record another contact owns.
                    results[item.id] = Result(
                        ok=False,
                        message=f"Salesforce {record.object_type} {record.id} with this email "
                        f"is already linked to contact {owner}",
                    )
                    continue
                item.found, item.object_type, item.record_id = record, record.object_type, record.id
                item.fields = fields_to_update(
                    item.values, record.object_type, mappings, found=record.values
                )
            else:
                item.object_type = new_as
                item.fields = fields_to_create(item.values, new_as, mappings)
                creates.append(item)
                continue
            if item.fields:
                updates.append(item)
            else:
                results[item.id] = Result(ok=True, message="Salesforce already has these values")

        calls = [(chunk, True) for chunk in _chunks(creates)]
        calls += [(chunk, False) for chunk in _chunks(updates)]
        for index, (chunk, created) in enumerate(calls):
            broken = await self._call(client, results, chunk, created=created)
            if broken is not None and broken.transient:
                # Throttled or down: the remaining calls would only fail the same way.
                for later, _ in calls[index + 1 :]:
                    results |= {c.id: broken for c in later}
                return results
        converted = [c for c in updates if results[c.id].code == CONVERTED_LEAD]
        if converted:
            await self._follow_conversions(client, converted, results, mappings)
        return results

    async def _follow_conversions(
        self,
        client: SalesforceClient,
        items: list[Claimed],
        results: dict[int, Result],
        mappings: list[Mapping],
    ) -> None:
        """A linked Lead was converted: write to its Contact instead, and link to that."""
        try:
            leads = await client.get_records(
                "Lead", [c.record_id or "" for c in items], ["ConvertedContactId"]
            )
        except SalesforceError as error:
            results |= {c.id: Result.failed(error) for c in items}
            return
        targets = {
            item.id: str(lead.values.get("ConvertedContactId") or "")
            for item in items
            if (lead := leads.get(item.record_id or "")) is not None
        }
        owners = await self._owners({t for t in targets.values() if t})
        retargeted: list[Claimed] = []
        for item in items:
            contact_id = targets.get(item.id)
            if not contact_id:
                continue  # keeps the CANNOT_UPDATE_CONVERTED_LEAD failure
            owner = owners.get(contact_id)
            if owner is not None and owner != item.contact_id:
                results[item.id] = Result(
                    ok=False,
                    message=f"Lead {item.record_id} was converted into Contact {contact_id}, "
                    f"which is linked to contact {owner}",
                )
                continue
            item.converted_from, item.record_id = item.record_id, str(contact_id)
            item.object_type = "Contact"
            item.fields = fields_to_update(item.values, "Contact", mappings)
            if item.fields:
                retargeted.append(item)
            else:
                results[item.id] = Result(ok=True)
        for chunk in _chunks(retargeted):
            await self._call(client, results, chunk, created=False)

    async def _owners(self, record_ids: set[str]) -> dict[str, int]:
        """The contact each of these Salesforce records is already linked to."""
        if not record_ids:
            return {}
        async with self.session_factory() as session:
            rows = await session.execute(
                select(Contact.salesforce_id, Contact.id).where(
                    Contact.salesforce_id.in_(record_ids)
                )
            )
            return {record_id: contact_id for record_id, contact_id in rows if record_id}

    async def _find_existing(
        self, client: SalesforceClient, unlinked: list[Claimed], mappings: list[Mapping]
    ) -> dict[str, SalesforceRecord]:
        """Rule 6: before creating, look the record up by email (most recently modified wins)."""
        emails = sorted({e for c in unlinked for e in [*c.searched_emails, c.email or ""] if e})
        if not emails:
            return {}
        fields = {
            obj: sorted({f for m in mappings if (f := salesforce_field(m, obj))} - {"Email"})
            for obj in ("Lead", "Contact")
        }
        return await client.find_by_emails(emails, fields)

    async def _call(
        self,
        client: SalesforceClient,
        results: dict[int, Result],
        chunk: list[Claimed],
        *,
        created: bool,
    ) -> Result | None:
        """One collection call; returns the failure when the call as a whole failed."""
        try:
            if created:
                outcomes = await client.create_records([(c.object_type, c.fields) for c in chunk])
            else:
                outcomes = await client.update_records(
                    [(c.object_type, c.record_id or "", c.fields) for c in chunk]
                )
        except SalesforceError as error:
            failure = Result.failed(error)
            for item in chunk:
                results[item.id] = failure
            return failure
        for item, outcome in zip(chunk, outcomes, strict=True):
            if outcome.success:
                if created:
                    item.record_id = outcome.id
                results[item.id] = Result(ok=True)
            else:
                text = f"{outcome.error_code}: {outcome.message}"
                results[item.id] = Result(
                    ok=False, message=text, transient=outcome.transient, code=outcome.error_code
                )
        return None

    def settle_load(self, claimed: list[Claimed]) -> dict[str, Any]:
        # Linking needs only the link columns; a record may be held by another contact.
        return {
            "salesforce_ids": sorted({c.record_id for c in claimed if c.record_id}),
            "properties": False,
            "queued": False,
        }

    def on_delivered(
        self, contacts: ContactBatch, contact: ContactState, item: Claimed, delivery: Settled
    ) -> str | None:
        conflict = self._link(contacts, contact, item)
        if conflict is None and item.found is not None:
            delivery.operation = Operation.UPDATE
        return conflict

    def record_id(self, item: Claimed) -> str | None:
        return item.record_id

    def _link(self, contacts: ContactBatch, contact: ContactState, item: Claimed) -> str | None:
        """Link the contact to its record and remember the values Salesforce now has, until the
        record's Outbound Message (the echo of this delivery) confirms them."""
        holder = contacts.by_salesforce_id.get(item.record_id or "")
        previous = contact.salesforce_id
        converted = item.converted_from is not None and contact.salesforce_id == item.converted_from
        if converted and item.record_id is not None:
            if holder is not None and holder is not contact:
                return (
                    f"Salesforce Contact {item.record_id} is already linked to contact {holder.id}"
                )
            contact.salesforce_id = item.record_id
            contact.salesforce_object = item.object_type
            contact.salesforce_values = dict(item.fields)
            contact.salesforce_echo_of = item.id
            contacts.relinked(contact, previous)
            return None
        if contact.salesforce_id is None and item.record_id is not None:
            if holder is not None and holder is not contact:
                if contact.merged_into_id != holder.id:
                    return (
                        f"Salesforce record {item.record_id} is already linked to contact "
                        f"{holder.id}"
                    )
                # Merged in HubSpot while this was in flight: the survivor owns the link now.
                return None
            contact.salesforce_id = item.record_id
            contact.salesforce_object = item.object_type
            contacts.relinked(contact, previous)
        known = dict(item.found.values) if item.found else dict(contact.salesforce_values)
        contact.salesforce_values = {**known, **item.fields}
        contact.salesforce_echo_of = item.id
        return None


def _found_for(item: Claimed, found: dict[str, SalesforceRecord]) -> SalesforceRecord | None:
    """The record for the contact's current email, else one made under an email it had."""
    for email in [item.email or "", *reversed(item.searched_emails)]:
        if email in found:
            return found[email]
    return None


def _chunks(items: list[Claimed]) -> list[list[Claimed]]:
    return [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]
