"""The worker step that delivers queued changes to HubSpot in batches of up to 100."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.delivery.base import Deliverer, Due, Result, Settled
from syncgate.delivery.models import Operation, Target
from syncgate.models import utc_now
from syncgate.platforms.hubspot.client import BatchResult, HubSpotClient, HubSpotError
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import ContactState, apply_properties

BATCH_SIZE = 100  # inputs per HubSpot batch call


@dataclass
class Claimed:
    id: int
    contact_id: int
    attempts: int
    values: dict[str, Any]
    hubspot_id: str | None
    email: str | None
    written_id: str | None = None  # the HubSpot id the write went to


class HubSpotDeliverer(Deliverer[Claimed, HubSpotClient]):
    target = Target.HUBSPOT
    batch_size = BATCH_SIZE

    async def prepare(self, session: AsyncSession, due: Sequence[Due]) -> list[Claimed]:
        return [
            Claimed(
                id=delivery.id,
                contact_id=delivery.contact_id,
                attempts=delivery.attempts,
                values=delivery.values,
                hubspot_id=delivery.hubspot_id,
                email=delivery.email,
            )
            for delivery in due
        ]

    async def send(self, claimed: list[Claimed]) -> dict[int, Result]:
        assert self.client is not None
        return await self._send(self.client, claimed)

    async def _send(self, client: HubSpotClient, claimed: list[Claimed]) -> dict[int, Result]:
        results: dict[int, Result] = {}
        updates = [c for c in claimed if c.hubspot_id is not None]
        upserts: list[Claimed] = []
        emails: set[str] = set()
        for item in claimed:
            if item.hubspot_id is not None:
                continue
            email = item.values.get("email") or item.email
            if not email:
                results[item.id] = Result(ok=False, message="no email to find or create it by")
            elif email.lower() in emails:
                # HubSpot refuses one email twice in an upsert batch; the next round takes it.
                results[item.id] = Result(ok=False, transient=True, message="same email in batch")
            else:
                emails.add(email.lower())
                item.values = {**item.values, "email": email}
                upserts.append(item)
        broken = None
        if updates:
            inputs = [(c.hubspot_id or "", c.values) for c in updates]
            broken = await self._call(results, updates, client.batch_update(inputs))
        if upserts and broken is not None and broken.outage:
            # Down or out of allowance: the second call would only fail the same way.
            results |= {c.id: broken for c in upserts}
        elif upserts:
            await self._call(
                results, upserts, client.batch_upsert_by_email([c.values for c in upserts])
            )
        return results

    async def _call(
        self, results: dict[int, Result], chunk: list[Claimed], call: Any
    ) -> Result | None:
        """One batch call; returns the failure when the call as a whole failed."""
        try:
            outcomes: list[BatchResult] = await call
        except HubSpotError as error:
            failure = Result.failed(error)
            for item in chunk:
                results[item.id] = failure
            return failure
        for outcome in outcomes:
            item = chunk[outcome.index]
            if outcome.success:
                item.written_id = outcome.id or item.hubspot_id
                results[item.id] = Result(ok=True)
            else:
                message = outcome.message or "rejected by HubSpot"
                if outcome.existing_id:
                    message += f" (existing contact {outcome.existing_id})"
                results[item.id] = Result(ok=False, message=message, transient=outcome.transient)
        return None

    def settle_load(self, claimed: list[Claimed]) -> dict[str, Any]:
        # The contacts that already hold the HubSpot ids that created contacts were written to.
        return {
            "queued": False,
            "hubspot_ids": sorted(
                {c.written_id for c in claimed if c.hubspot_id is None and c.written_id}
            ),
        }

    def on_delivered(
        self, contacts: ContactBatch, contact: ContactState, item: Claimed, delivery: Settled
    ) -> str | None:
        contact = self._link(contacts, contact, item.written_id)
        # Remember what HubSpot now has: its webhook echo is then no change.
        apply_properties(contact, item.values, int(utc_now().timestamp() * 1000))
        contacts.memberships.refresh(contact)
        if item.hubspot_id is None:
            delivery.operation = Operation.CREATE
        return None

    def record_id(self, item: Claimed) -> str | None:
        return item.written_id

    def _link(
        self, contacts: ContactBatch, contact: ContactState, hubspot_id: str | None
    ) -> ContactState:
        """Give the contact its HubSpot id; if a webhook already brought that contact in as
        another row, fold this one into it so one person stays one contact."""
        if contact.hubspot_id is not None or hubspot_id is None:
            return contact
        holder = contacts.by_hubspot_id.get(hubspot_id)
        if holder is None or holder is contact:
            contact.hubspot_id = hubspot_id
            contacts.hubspot_linked(contact)
            return contact
        if holder.salesforce_id is None and contact.salesforce_id is not None:
            contacts.move_link(contact, holder)
        contact.merged_into_id = holder.id
        return holder
