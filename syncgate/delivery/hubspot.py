"""The worker step that delivers queued changes to HubSpot in batches of up to 100."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from syncgate.delivery.base import Deliverer, Result
from syncgate.delivery.models import Delivery, Operation, Target
from syncgate.models import utc_now
from syncgate.platforms.hubspot.client import BatchResult, HubSpotClient, HubSpotError
from syncgate.sync.contacts import apply_properties
from syncgate.sync.models import Contact
from syncgate.sync.round_cache import RoundCache
from syncgate.sync.segments import ActiveSegment, active_segments, refresh_memberships

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


@dataclass
class SettleContext:
    segments: list[ActiveSegment]
    memberships: RoundCache
    # The contacts that already hold the HubSpot ids that created contacts were written to.
    holders: dict[str, Contact]


class HubSpotDeliverer(Deliverer[Claimed, HubSpotClient]):
    target = Target.HUBSPOT
    batch_size = BATCH_SIZE

    async def prepare(
        self, session: AsyncSession, rows: Sequence[tuple[Delivery, Contact]]
    ) -> list[Claimed]:
        return [
            Claimed(
                id=delivery.id,
                contact_id=delivery.contact_id,
                attempts=delivery.attempts,
                values=dict(delivery.values),
                hubspot_id=contact.hubspot_id,
                email=contact.email,
            )
            for delivery, contact in rows
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

    async def settle_context(
        self, session: AsyncSession, claimed: list[Claimed], contacts: Mapping[int, Contact]
    ) -> SettleContext:
        written = {c.written_id for c in claimed if c.hubspot_id is None and c.written_id}
        holders = await session.scalars(select(Contact).where(Contact.hubspot_id.in_(written)))
        holders_by_id = {c.hubspot_id: c for c in holders if c.hubspot_id is not None}
        return SettleContext(
            segments=await active_segments(session),
            memberships=await RoundCache.memberships_of(
                session, [*contacts.values(), *holders_by_id.values()]
            ),
            holders=holders_by_id,
        )

    async def after_settle(self, session: AsyncSession, context: SettleContext) -> None:
        await context.memberships.write(session)

    async def on_delivered(
        self, session: AsyncSession, contact: Contact, item: Claimed, context: SettleContext
    ) -> str | None:
        contact = await self._link(session, contact, item.written_id, context.holders)
        # Remember what HubSpot now has: its webhook echo is then no change.
        apply_properties(contact, item.values, int(utc_now().timestamp() * 1000))
        if context.memberships.covers(contact):
            context.memberships.refresh_memberships(contact, context.segments)
        else:
            await refresh_memberships(session, contact, context.segments)
        if item.hubspot_id is None:
            delivery = await session.get(Delivery, item.id)
            if delivery is not None:
                delivery.operation = Operation.CREATE
        return None

    def record_id(self, item: Claimed, contact: Contact) -> str | None:
        return item.written_id

    async def _link(
        self,
        session: AsyncSession,
        contact: Contact,
        hubspot_id: str | None,
        holders: dict[str, Contact],
    ) -> Contact:
        """Give the contact its HubSpot id; if a webhook already brought that contact in as
        another row, fold this one into it so one person stays one contact."""
        if contact.hubspot_id is not None or hubspot_id is None:
            return contact
        holder = holders.get(hubspot_id)
        if holder is None or holder is contact:
            contact.hubspot_id = hubspot_id
            holders[hubspot_id] = contact
            return contact
        if holder.salesforce_id is None and contact.salesforce_id is not None:
            salesforce_id, contact.salesforce_id = contact.salesforce_id, None
            await session.flush()
            holder.salesforce_id = salesforce_id
            holder.salesforce_object = contact.salesforce_object
            holder.salesforce_values = contact.salesforce_values
            holder.salesforce_modified_ms = contact.salesforce_modified_ms
        contact.merged_into_id = holder.id
        return holder
