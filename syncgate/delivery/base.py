"""What the Salesforce and HubSpot delivery steps share: claiming due deliveries with a lease,
and settling each one as done, retried or dead after the platform answered."""

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased, raiseload
from sqlalchemy.orm.attributes import set_committed_value

from syncgate.config import Settings
from syncgate.db import among, transaction
from syncgate.delivery.models import Delivery, DeliveryStatus, Target
from syncgate.delivery.retry import retry_delay
from syncgate.metrics import DELIVERIES, FORWARD_LATENCY
from syncgate.models import utc_now
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import ContactState
from syncgate.sync.models import Contact
from syncgate.sync.segments import active_segments

log = logging.getLogger("syncgate.delivery")

LEASE = timedelta(seconds=180)  # longer than one round of calls can take
# While the inbox has a backlog, a partial batch waits up to this long for more records, so a
# burst goes out in full batches; without a backlog nothing waits.
HOLD_PARTIAL_BATCH = timedelta(seconds=0.5)


@dataclass
class Result:
    ok: bool
    message: str = ""
    transient: bool = False
    retry_after: float | None = None
    code: str | None = None


class Claim(Protocol):
    id: int
    contact_id: int
    attempts: int


ClaimT = TypeVar("ClaimT", bound=Claim)
ClientT = TypeVar("ClientT")


class Deliverer(ABC, Generic[ClaimT, ClientT]):
    """One worker step for one target: claim a batch, send it, settle every delivery."""

    target: Target
    batch_size: int

    def __init__(
        self,
        config: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        client: ClientT | None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.client = client

    @property
    def ready(self) -> bool:
        """Whether the platform's credentials are configured."""
        return self.client is not None

    @abstractmethod
    async def prepare(
        self, session: AsyncSession, rows: Sequence[tuple[Delivery, Contact]]
    ) -> list[ClaimT]:
        """Turn claimed rows into what sending needs (detached from the session)."""

    @abstractmethod
    async def send(self, claimed: list[ClaimT]) -> dict[int, Result]:
        """Send to the platform; a result for every claimed delivery id."""

    @abstractmethod
    def on_delivered(
        self, contacts: ContactBatch, contact: ContactState, item: ClaimT, delivery: Delivery
    ) -> str | None:
        """Update the mirror after a success; a message instead when the link conflicts."""

    def settle_load(self, claimed: list[ClaimT]) -> dict[str, Any]:
        """What `on_delivered` needs of the contacts, as `ContactBatch.load` keywords: more
        contacts (those holding the records the batch wrote to), properties or not."""
        return {}

    def record_id(self, item: ClaimT) -> str | None:
        """The platform's id of the record a delivery wrote, for its history."""
        return None

    async def run_once(self, *, backlog: bool = False) -> int:
        """Send one batch of due deliveries; returns how many were claimed."""
        if not self.ready or (backlog and await self._worth_waiting()):
            return 0
        claimed = await self._claim()
        if not claimed:
            return 0
        try:
            results = await self.send(claimed)
        except Exception as error:
            # Counted as a failed attempt, so max_attempts still ends it as dead instead of
            # leaving it in flight to be reclaimed forever.
            log.exception("sending to %s failed unexpectedly", self.target.value)
            failure = Result(ok=False, message=f"{type(error).__name__}: {error}", transient=True)
            results = {c.id: failure for c in claimed}
        await self._settle(claimed, results)
        return len(claimed)

    async def _worth_waiting(self) -> bool:
        """Whether a partial batch is young enough to wait for more records."""
        async with self.session_factory() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(Delivery.created_at)).where(
                        Delivery.target == self.target,
                        Delivery.status == DeliveryStatus.PENDING,
                        Delivery.next_attempt_at <= utc_now(),
                    )
                )
            ).one()
        if count >= self.batch_size or oldest is None:
            return False
        if oldest.tzinfo is None:  # SQLite hands aggregates back without the UTC type
            oldest = oldest.replace(tzinfo=UTC)
        return bool(utc_now() - oldest < HOLD_PARTIAL_BATCH)

    async def _claim(self) -> list[ClaimT]:
        other = aliased(Delivery)
        async with transaction(self.session_factory) as session:
            now = utc_now()
            dialect = session.get_bind().dialect
            live_sibling = exists().where(
                other.contact_id == Delivery.contact_id,
                other.target == Delivery.target,
                other.id != Delivery.id,
                other.status == DeliveryStatus.IN_FLIGHT,
                other.lease_until > now,
            )
            due = (
                await session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.target == self.target,
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
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True, of=Delivery)
                )
            ).all()
            # A reclaimed delivery (its worker died) and a newer pending one of the same contact
            # are both due: send only the older, or an unlinked contact is created twice.
            first_per_contact: dict[int, Delivery] = {}
            for row in due:
                first_per_contact.setdefault(row.contact_id, row)
            rows = list(first_per_contact.values())
            if not rows:
                return []
            await session.execute(
                update(Delivery)
                .where(among(dialect, Delivery.id, [row.id for row in rows]))
                .values(
                    status=DeliveryStatus.IN_FLIGHT,
                    lease_until=now + LEASE,
                    attempts=Delivery.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            for row in rows:
                # What the UPDATE wrote, without a reload and without marking the row dirty.
                set_committed_value(row, "attempts", row.attempts + 1)
            found = await session.scalars(
                select(Contact)
                .where(among(dialect, Contact.id, {row.contact_id for row in rows}))
                .options(raiseload(Contact.properties))  # sending needs only the link columns
            )
            contacts = {contact.id: contact for contact in found}
            return await self.prepare(session, [(row, contacts[row.contact_id]) for row in rows])

    async def _settle(self, claimed: list[ClaimT], results: Mapping[int, Result]) -> None:
        latencies: list[float] = []
        outcomes: list[str] = []
        async with transaction(self.session_factory) as session:
            now = utc_now()
            deliveries = await _by_id(session, Delivery, {c.id for c in claimed})
            # Locked up front in id order, the order a processing round locks them in: taking
            # them one by one as they are updated could deadlock with a round.
            connection = await session.connection()
            contacts = await ContactBatch.load(
                connection,
                await active_segments(session),
                ids={c.contact_id for c in claimed},
                **self.settle_load(claimed),
            )
            for item in claimed:
                delivery, contact = deliveries.get(item.id), contacts.by_id.get(item.contact_id)
                if delivery is None or contact is None:
                    continue
                if (
                    delivery.status != DeliveryStatus.IN_FLIGHT
                    or delivery.attempts != item.attempts
                ):
                    # Our lease ran out and another worker claimed it again: its outcome counts.
                    log.warning("delivery %s was claimed again; this result is dropped", item.id)
                    continue
                result = results.get(item.id) or Result(ok=False, message="no answer for it")
                if result.ok:
                    conflict = self.on_delivered(contacts, contact, item, delivery)
                    if conflict:
                        result = Result(ok=False, message=conflict)
                outcome = self._apply(delivery, item, result, now)
                outcomes.append(outcome)
                if outcome == "done":
                    latencies.append((now - delivery.first_received_at).total_seconds())
                delivery.history = [
                    *delivery.history,
                    {"at": now.isoformat(), "attempt": item.attempts, "outcome": outcome}
                    | ({"record": self.record_id(item)} if result.ok else {})
                    | ({} if result.ok else {"error": result.message}),
                ]
            await contacts.write(connection)
        for latency in latencies:
            FORWARD_LATENCY.observe(latency)
        for outcome in outcomes:
            DELIVERIES.labels(self.target.value, outcome).inc()

    def _apply(self, delivery: Delivery, item: ClaimT, result: Result, now: datetime) -> str:
        """Move the delivery to its next state; returns the outcome's name."""
        delivery.lease_until = None
        context = {"fields": {"delivery_id": item.id, "contact_id": item.contact_id}}
        if result.ok:
            delivery.status = DeliveryStatus.DONE
            delivery.delivered_at = now
            delivery.last_error = None
            return "done"
        delivery.last_error = result.message
        if result.transient and item.attempts < self.config.max_attempts:
            log.warning(
                "%s delivery %s failed, will retry: %s",
                self.target.value,
                item.id,
                result.message,
                extra=context,
            )
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = now + retry_delay(
                self.config, item.attempts, result.retry_after
            )
            return "retry"
        log.error(
            "%s delivery %s is dead: %s", self.target.value, item.id, result.message, extra=context
        )
        delivery.status = DeliveryStatus.DEAD
        return "dead"


async def _by_id(
    session: AsyncSession, model: type[Delivery], ids: set[int]
) -> dict[int, Delivery]:
    dialect = session.get_bind().dialect
    rows = (await session.scalars(select(model).where(among(dialect, model.id, ids)))).all()
    return {row.id: row for row in rows}
