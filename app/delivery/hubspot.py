"""The worker step that delivers queued changes to HubSpot in batches of up to 100."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.config import Settings
from app.db import transaction
from app.delivery.models import Delivery, DeliveryStatus, Operation, Target
from app.delivery.retry import retry_delay
from app.metrics import DELIVERIES, FORWARD_LATENCY
from app.models import utc_now
from app.platforms.hubspot.client import BatchResult, HubSpotClient, HubSpotError, TransientError
from app.sync.contacts import apply_properties
from app.sync.models import Contact
from app.sync.segments import refresh_memberships

log = logging.getLogger("syncgate.delivery.hubspot")

BATCH_SIZE = 100  # inputs per HubSpot batch call
LEASE = timedelta(seconds=180)


@dataclass
class Claimed:
    id: int
    contact_id: int
    attempts: int
    values: dict[str, Any]
    hubspot_id: str | None
    email: str | None


@dataclass
class Result:
    ok: bool
    hubspot_id: str | None = None
    message: str = ""
    transient: bool = False
    retry_after: float | None = None


class HubSpotDeliverer:
    def __init__(
        self,
        config: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        client: HubSpotClient | None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.client = client

    async def _claim(self) -> list[Claimed]:
        other = aliased(Delivery)
        async with transaction(self.session_factory) as session:
            now = utc_now()
            live_sibling = exists().where(
                other.contact_id == Delivery.contact_id,
                other.target == Delivery.target,
                other.id != Delivery.id,
                other.status == DeliveryStatus.IN_FLIGHT,
                other.lease_until > now,
            )
            rows = (
                await session.execute(
                    select(Delivery, Contact)
                    .join(Contact, Contact.id == Delivery.contact_id)
                    .where(
                        Delivery.target == Target.HUBSPOT,
                        or_(
                            and_(
                                Delivery.status == DeliveryStatus.PENDING,
                                Delivery.next_attempt_at <= now,
                            ),
                            and_(
                                Delivery.status == DeliveryStatus.IN_FLIGHT,
                                Delivery.lease_until < now,
                            ),
                        ),
                        ~live_sibling,
                    )
                    .order_by(Delivery.id)
                    .limit(BATCH_SIZE)
                    .with_for_update(skip_locked=True, of=Delivery)
                )
            ).all()
            if not rows:
                return []
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_([delivery.id for delivery, _ in rows]))
                .values(
                    status=DeliveryStatus.IN_FLIGHT,
                    lease_until=now + LEASE,
                    attempts=Delivery.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            return [
                Claimed(
                    id=delivery.id,
                    contact_id=delivery.contact_id,
                    attempts=delivery.attempts + 1,
                    values=dict(delivery.values),
                    hubspot_id=contact.hubspot_id,
                    email=contact.email,
                )
                for delivery, contact in rows
            ]

    async def run_once(self) -> int:
        """Send one batch of due deliveries; returns how many were claimed."""
        if self.client is None:
            return 0
        claimed = await self._claim()
        if not claimed:
            return 0
        results = await self._send(self.client, claimed)
        await self._record(claimed, results)
        return len(claimed)

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
        if updates:
            inputs = [(c.hubspot_id or "", c.values) for c in updates]
            await self._call(results, updates, client.batch_update(inputs))
        if upserts:
            await self._call(
                results, upserts, client.batch_upsert_by_email([c.values for c in upserts])
            )
        return results

    async def _call(self, results: dict[int, Result], chunk: list[Claimed], call: Any) -> None:
        try:
            outcomes: list[BatchResult] = await call
        except HubSpotError as error:
            retry_after = error.retry_after if isinstance(error, TransientError) else None
            for item in chunk:
                results[item.id] = Result(
                    ok=False,
                    message=error.message,
                    transient=isinstance(error, TransientError),
                    retry_after=retry_after,
                )
            return
        for outcome in outcomes:
            item = chunk[outcome.index]
            if outcome.success:
                results[item.id] = Result(ok=True, hubspot_id=outcome.id or item.hubspot_id)
            else:
                message = outcome.message or "rejected by HubSpot"
                if outcome.existing_id:
                    message += f" (existing contact {outcome.existing_id})"
                results[item.id] = Result(ok=False, message=message, transient=outcome.transient)

    async def _record(self, claimed: list[Claimed], results: dict[int, Result]) -> None:
        latencies: list[float] = []
        outcomes: list[str] = []
        async with transaction(self.session_factory) as session:
            now = utc_now()
            now_ms = int(now.timestamp() * 1000)
            for item in claimed:
                delivery = await session.get(Delivery, item.id)
                contact = await session.get(Contact, item.contact_id)
                if delivery is None or contact is None:
                    continue
                result = results.get(item.id) or Result(ok=False, message="no result from HubSpot")
                entry: dict[str, Any] = {"at": now.isoformat(), "attempt": item.attempts}
                if result.ok:
                    contact = await self._link(session, contact, result.hubspot_id)
                    # Remember what HubSpot now has: its webhook echo is then no change.
                    apply_properties(contact, item.values, now_ms)
                    await session.flush()
                    await refresh_memberships(session, contact)
                    delivery.status = DeliveryStatus.DONE
                    delivery.delivered_at = now
                    delivery.last_error = None
                    if item.hubspot_id is None:
                        delivery.operation = Operation.CREATE
                    entry |= {"outcome": "done", "record": contact.hubspot_id}
                    latencies.append((now - delivery.first_received_at).total_seconds())
                    outcomes.append("done")
                elif result.transient and item.attempts < self.config.max_attempts:
                    log.warning(
                        "HubSpot delivery %s failed, will retry: %s",
                        item.id,
                        result.message,
                        extra={"fields": {"delivery_id": item.id, "contact_id": item.contact_id}},
                    )
                    delivery.status = DeliveryStatus.PENDING
                    delivery.next_attempt_at = now + retry_delay(
                        self.config, item.attempts, result.retry_after
                    )
                    delivery.last_error = result.message
                    entry |= {"outcome": "retry", "error": result.message}
                    outcomes.append("retry")
                else:
                    log.error(
                        "HubSpot delivery %s is dead: %s",
                        item.id,
                        result.message,
                        extra={"fields": {"delivery_id": item.id, "contact_id": item.contact_id}},
                    )
                    delivery.status = DeliveryStatus.DEAD
                    delivery.last_error = result.message
                    entry |= {"outcome": "dead", "error": result.message}
                    outcomes.append("dead")
                delivery.lease_until = None
                delivery.history = [*delivery.history, entry]
        for latency in latencies:
            FORWARD_LATENCY.observe(latency)
        for outcome in outcomes:
            DELIVERIES.labels(Target.HUBSPOT.value, outcome).inc()

    async def _link(
        self, session: AsyncSession, contact: Contact, hubspot_id: str | None
    ) -> Contact:
        """Give the contact its HubSpot id; if a webhook already brought that contact in as
        another row, fold this one into it so one person stays one contact."""
        if contact.hubspot_id is not None or hubspot_id is None:
            return contact
        holder = await session.scalar(select(Contact).where(Contact.hubspot_id == hubspot_id))
        if holder is None:
            contact.hubspot_id = hubspot_id
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
