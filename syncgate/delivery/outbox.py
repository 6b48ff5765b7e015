"""Queueing deliveries: one pending delivery per contact and target, coalesced.

An `Outbox` holds the queued deliveries of a batch of contacts: their pending deliveries, locked
so a worker claiming one waits until the batch commits (values are never merged into a delivery
already on its way), and what is in flight to Salesforce. Changes coalesce in memory and are
written back in bulk.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from syncgate.db import among, insert_rows, update_rows
from syncgate.delivery.models import Delivery, DeliveryStatus, Operation, Target
from syncgate.models import table_of, utc_now
from syncgate.sync.contacts import ContactState

_DELIVERIES = table_of(Delivery)


@dataclass(eq=False)
class QueuedDelivery:
    """A pending delivery: stored (`id`) or created by this batch."""

    id: int | None
    contact: ContactState
    target: Target
    operation: str
    values: dict[str, Any]
    first_received_at: datetime
    source_event: str | None
    changed: bool = False
    removed: bool = False


class Outbox:
    def __init__(self) -> None:
        self._pending: dict[tuple[ContactState, str], QueuedDelivery] = {}
        # In-flight Salesforce deliveries per contact, oldest first: (id, values).
        self._in_flight: dict[ContactState, list[tuple[int, dict[str, Any]]]] = {}
        self._moved: list[QueuedDelivery] = []

    async def load(self, connection: AsyncConnection, contacts: list[ContactState]) -> None:
        by_id = {contact.id: contact for contact in contacts if contact.id is not None}
        if not by_id:
            return
        columns = (
            _DELIVERIES.c.id,
            _DELIVERIES.c.contact_id,
            _DELIVERIES.c.target,
            _DELIVERIES.c.operation,
            _DELIVERIES.c["values"],
            _DELIVERIES.c.first_received_at,
            _DELIVERIES.c.source_event,
        )
        # Pending first: one that a claim moves to in flight meanwhile is then read as such.
        pending = await connection.execute(
            select(*columns)
            .where(
                among(connection.dialect, _DELIVERIES.c.contact_id, by_id),
                _DELIVERIES.c.status == DeliveryStatus.PENDING,
            )
            .order_by(_DELIVERIES.c.id)
            .with_for_update()
        )
        for row in pending:
            contact = by_id[row.contact_id]
            self._pending[(contact, row.target)] = QueuedDelivery(
                row.id,
                contact,
                Target(row.target),
                row.operation,
                dict(row.values),
                row.first_received_at,
                row.source_event,
            )
        in_flight = await connection.execute(
            select(_DELIVERIES.c.id, _DELIVERIES.c.contact_id, _DELIVERIES.c["values"])
            .where(
                among(connection.dialect, _DELIVERIES.c.contact_id, by_id),
                _DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
                _DELIVERIES.c.target == Target.SALESFORCE,
            )
            .order_by(_DELIVERIES.c.id)
        )
        for delivery_id, contact_id, values in in_flight:
            self._in_flight.setdefault(by_id[contact_id], []).append((delivery_id, values))

    def in_flight_to_salesforce(self, contact: ContactState) -> list[tuple[int, dict[str, Any]]]:
        return self._in_flight.get(contact, [])

    def queued_salesforce_values(self, contact: ContactState) -> list[dict[str, Any]]:
        """What the contact's in-flight and pending Salesforce deliveries will write, oldest
        first."""
        values = [v for _, v in self._in_flight.get(contact, ())]
        pending = self._pending.get((contact, Target.SALESFORCE))
        return [*values, pending.values] if pending is not None else values

    def enqueue(
        self,
        target: Target,
        contact: ContactState,
        values: dict[str, Any],
        received_at: datetime,
        source_event: str | None,
    ) -> None:
        """Queue values for the contact's record on `target`, merged into its pending delivery
        if any: the latest value per field wins."""
        pending = self._pending.get((contact, target))
        if pending is None:
            linked = contact.salesforce_id if target is Target.SALESFORCE else contact.hubspot_id
            operation = Operation.UPDATE if linked else Operation.CREATE
            self._pending[(contact, target)] = QueuedDelivery(
                None, contact, target, operation, dict(values), received_at, source_event
            )
            return
        pending.values = {**pending.values, **values}
        pending.first_received_at = min(pending.first_received_at, received_at)
        pending.source_event = source_event
        pending.changed = True

    def hand_over(self, merged: ContactState, survivor: ContactState) -> None:
        """A merged contact's pending Salesforce change goes to the survivor, with the link.

        Left behind, it would go out as an unlinked contact: found by email at best, created
        again as a duplicate when the record's email differs.
        """
        moved = self._pending.pop((merged, Target.SALESFORCE), None)
        if moved is None:
            return
        kept = self._pending.get((survivor, Target.SALESFORCE))
        if kept is None:
            moved.contact, moved.operation, moved.changed = survivor, Operation.UPDATE, True
            self._pending[(survivor, Target.SALESFORCE)] = moved
            return
        # The survivor's own values win where both changed the same property.
        kept.values = {**moved.values, **kept.values}
        kept.first_received_at = min(kept.first_received_at, moved.first_received_at)
        kept.changed = True
        moved.removed = True
        self._moved.append(moved)

    async def write(self, connection: AsyncConnection) -> None:
        """Insert new deliveries, update coalesced ones, delete those handed over (contacts must
        have their ids by now)."""
        now = utc_now()
        new, changed = [], []
        for queued in self._pending.values():
            row = {
                "contact_id": queued.contact.id,
                "operation": queued.operation,
                "values": queued.values,
                "first_received_at": queued.first_received_at,
                "source_event": queued.source_event,
            }
            if queued.id is None:
                new.append(
                    row
                    | {
                        "target": queued.target,
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "history": [],
                        "searched_emails": [],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            elif queued.changed:
                changed.append({"id": queued.id, **row, "updated_at": now})
        removed = [q.id for q in self._moved if q.id is not None]
        if removed:
            await connection.execute(
                delete(_DELIVERIES).where(among(connection.dialect, _DELIVERIES.c.id, removed))
            )
        await update_rows(connection, _DELIVERIES, changed)
        await insert_rows(connection, _DELIVERIES, new)
