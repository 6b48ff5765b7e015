"""What the Salesforce and HubSpot delivery steps share: the platform's breaker and allowance,
claiming due deliveries with a lease, and settling each one as done, retried or dead after the
platform answered."""

import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.connections.breaker import Connection, Outcome
from syncgate.connections.credentials import not_connected
from syncgate.db import among, lost_a_conflict, transaction, update_rows
from syncgate.delivery.models import Delivery, DeliveryStatus, Target
from syncgate.delivery.retry import retry_delay
from syncgate.metrics import DELIVERIES, FORWARD_LATENCY
from syncgate.models import table_of, utc_now
from syncgate.platforms.errors import PlatformError
from syncgate.platforms.usage import ApiUsage
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import ContactState
from syncgate.sync.models import Contact
from syncgate.sync.segments import active_segments

log = logging.getLogger("syncgate.delivery")

LEASE = timedelta(seconds=180)  # longer than one round of calls can take
# While the inbox has a backlog, a partial batch waits up to this long for more records, so a
# burst goes out in full batches; without a backlog nothing waits.
HOLD_PARTIAL_BATCH = timedelta(seconds=0.5)
# Without credentials, new pending deliveries get their "not connected" reason this often: a
# write every poll would take SQLite's write lock twice a second for nothing.
NOT_CONNECTED_EVERY_S = 5.0
SETTLE_TRIES = 3
_DELIVERIES = table_of(Delivery)
_SIBLINGS = _DELIVERIES.alias("other")  # built once: an alias rebuilt per claim costs its columns
_CONTACTS = table_of(Contact)


@dataclass
class Result:
    ok: bool
    message: str = ""
    transient: bool = False
    retry_after: float | None = None
    code: str | None = None
    outage: bool = False  # the call as a whole failed: the breaker counts it

    @classmethod
    def failed(cls, error: PlatformError) -> "Result":
        # An outage (refused credentials included) is the platform's state, not this delivery's:
        # it waits for the platform instead of going dead.
        return cls(
            ok=False,
            message=error.message,
            transient=error.transient or error.outage,
            retry_after=error.retry_after,
            outage=error.outage,
        )


class Claim(Protocol):
    id: int
    contact_id: int
    attempts: int


@dataclass(slots=True)
class Due:
    """A delivery just claimed (`attempts` counts this one), with its contact's link columns."""

    id: int
    contact_id: int
    attempts: int
    values: dict[str, Any]
    searched_emails: list[str]
    hubspot_id: str | None
    email: str | None
    salesforce_id: str | None
    salesforce_object: str | None
    merged_into_id: int | None


# The claim's columns, in `Due`'s order: the delivery's, then its contact's.
_DUE = tuple(
    _DELIVERIES.c[f.name] if f.name in _DELIVERIES.c else _CONTACTS.c[f.name] for f in fields(Due)
)


class PlatformClient(Protocol):
    usage: ApiUsage | None

    async def probe(self) -> None: ...


ClaimT = TypeVar("ClaimT", bound=Claim)
ClientT = TypeVar("ClientT", bound=PlatformClient)


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
        self._not_connected_marked_at = -NOT_CONNECTED_EVERY_S
        self.connection = Connection(config, session_factory, self.target)

    @property
    def ready(self) -> bool:
        """Whether the platform's credentials are configured."""
        return self.client is not None

    @abstractmethod
    async def prepare(self, session: AsyncSession, due: Sequence[Due]) -> list[ClaimT]:
        """Turn claimed deliveries into what sending needs; what it changes of a `Due`'s
        `searched_emails` is saved with the claim."""

    @abstractmethod
    async def send(self, claimed: list[ClaimT]) -> dict[int, Result]:
        """Send to the platform; a result for every claimed delivery id."""

    @abstractmethod
    def on_delivered(
        self, contacts: ContactBatch, contact: ContactState, item: ClaimT, delivery: "Settled"
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
        if not self.ready:
            await self._mark_not_connected()
            return 0
        assert self.client is not None
        gate = await self.connection.gate()
        if gate.probe:
            await self.probe()
            return 0
        if not gate.deliveries or (backlog and await self._worth_waiting()):
            return 0
        claimed = await self._claim(with_jobs=gate.jobs)
        if not claimed:
            return 0
        try:
            results = await self.send(claimed)
        except Exception as error:
            # Counted as a failed attempt, so the retry window still ends it as dead instead of
            # leaving it in flight to be reclaimed forever.
            log.exception("sending to %s failed unexpectedly", self.target.value)
            failure = Result(ok=False, message=f"{type(error).__name__}: {error}", transient=True)
            results = {c.id: failure for c in claimed}
        await self._settle_until_it_sticks(claimed, results)
        outcome, message = _outcome(results.values())
        await self.connection.record(outcome, message, self.client.usage)
        return len(claimed)

    async def _mark_not_connected(self) -> None:
        """Pending deliveries say why they wait; they go once the credentials are set."""
        now = time.monotonic()
        if now - self._not_connected_marked_at < NOT_CONNECTED_EVERY_S:
            return
        self._not_connected_marked_at = now
        message = not_connected(self.target.value)
        async with transaction(self.session_factory) as session:
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.target == self.target,
                    Delivery.status == DeliveryStatus.PENDING,
                    or_(Delivery.last_error.is_(None), Delivery.last_error != message),
                )
                .values(last_error=message)
                .execution_options(synchronize_session=False)
            )

    async def probe(self) -> bool:
        """One cheap call that shows whether the platform answers, and reads its allowance."""
        client = self.client
        if client is None:
            return False
        try:
            await client.probe()
        except PlatformError as error:
            outcome = Outcome.OUTAGE if error.outage else Outcome.ANSWERED
            await self.connection.record(outcome, error.message, client.usage, probed=True)
            return outcome is Outcome.ANSWERED
        await self.connection.record(Outcome.ANSWERED, usage=client.usage, probed=True)
        return True

    async def _worth_waiting(self) -> bool:
        """Whether a partial batch is young enough to wait for more records."""
        # At most a batch is counted: past that nothing waits, so a backlog of any size costs
        # one batch's rows, and below it the oldest of them is the oldest due.
        due = (
            select(Delivery.created_at)
            .where(
                Delivery.target == self.target,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= utc_now(),
            )
            .limit(self.batch_size)
            .subquery()
        )
        async with self.session_factory() as session:
            count, oldest = (
                await session.execute(select(func.count(), func.min(due.c.created_at)))
            ).one()
        if count >= self.batch_size or oldest is None:
            return False
        if oldest.tzinfo is None:  # SQLite hands aggregates back without the UTC type
            oldest = oldest.replace(tzinfo=UTC)
        return bool(utc_now() - oldest < HOLD_PARTIAL_BATCH)

    async def _claim(self, *, with_jobs: bool) -> list[ClaimT]:
        table, other = _DELIVERIES, _SIBLINGS
        async with transaction(self.session_factory) as session:
            now = utc_now()
            connection = await session.connection()
            # One record's deliveries go out one at a time and in the order they were queued:
            # a newer one sent before an older one that waits for its retry would be overwritten.
            blocking_sibling = exists().where(
                other.c.contact_id == table.c.contact_id,
                other.c.target == table.c.target,
                or_(
                    and_(
                        other.c.id != table.c.id,
                        other.c.status == DeliveryStatus.IN_FLIGHT,
                        other.c.lease_until > now,
                    ),
                    and_(other.c.id < table.c.id, other.c.status == DeliveryStatus.PENDING),
                ),
            )
            query = (
                select(*_DUE)
                .join(_CONTACTS, _CONTACTS.c.id == table.c.contact_id)
                .where(table.c.target == self.target, ~blocking_sibling)
                .order_by(table.c.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True, of=table)
            )
            if not with_jobs:  # the allowance is past the jobs' share: what they queued waits
                query = query.where(
                    or_(table.c.source_event.is_(None), table.c.source_event.not_like("job:%"))
                )
            # Two statements, not one with an OR: each walks the claim index in id order. A walk
            # in index order marks the entries of row versions nobody can see any more, so the
            # next claim skips them; the bitmap scan an OR gets never does, and during a burst,
            # before any vacuum, it visited every delivery that had ever been pending.
            abandoned = await connection.execute(  # in flight, but their worker's lease ran out
                query.where(table.c.status == DeliveryStatus.IN_FLIGHT, table.c.lease_until < now)
            )
            pending = await connection.execute(
                query.where(
                    table.c.status == DeliveryStatus.PENDING, table.c.next_attempt_at <= now
                )
            )
            # A reclaimed delivery and a newer pending one of the same contact are both due:
            # send only the older, or an unlinked contact is created twice.
            first_per_contact: dict[int, Due] = {}
            for row in sorted([*abandoned, *pending], key=lambda row: row.id)[: self.batch_size]:
                if row.contact_id not in first_per_contact:
                    due = Due(*row)
                    due.attempts += 1
                    first_per_contact[row.contact_id] = due
            if not first_per_contact:
                return []
            claimed = list(first_per_contact.values())
            prepared = await self.prepare(session, claimed)
            lease_until = now + LEASE
            await update_rows(
                connection,
                table,
                [
                    {
                        "id": due.id,
                        "status": DeliveryStatus.IN_FLIGHT,
                        "lease_until": lease_until,
                        "attempts": due.attempts,
                        "searched_emails": due.searched_emails,
                    }
                    for due in claimed
                ],
            )
            return prepared

    async def _settle_until_it_sticks(
        self, claimed: list[ClaimT], results: Mapping[int, Result]
    ) -> None:
        # Losing a deadlock would leave the batch in flight until its lease runs out, and its
        # results are still at hand: settle it again.
        for attempt in range(1, SETTLE_TRIES + 1):
            try:
                await self._settle(claimed, results)
                return
            except Exception as error:
                if attempt == SETTLE_TRIES or not lost_a_conflict(error):
                    raise
                log.warning("settling a %s batch lost a deadlock; again", self.target.value)

    async def _settle(self, claimed: list[ClaimT], results: Mapping[int, Result]) -> None:
        latencies: list[float] = []
        outcomes: list[str] = []
        settled: list[Settled] = []
        async with transaction(self.session_factory) as session:
            now = utc_now()
            connection = await session.connection()
            deliveries = await Settled.load(connection, {c.id for c in claimed})
            # Locked up front in id order, the order a processing round locks them in: taking
            # them one by one as they are updated could deadlock with a round.
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
                settled.append(delivery)
            await update_rows(connection, _DELIVERIES, [d.row(now) for d in settled])
            await self._absorb_newer(
                connection, [d for d in settled if d.status == DeliveryStatus.PENDING]
            )
            await contacts.write(connection)
        for latency in latencies:
            FORWARD_LATENCY.observe(latency)
        for outcome, count in Counter(outcomes).items():
            DELIVERIES.labels(self.target.value, outcome).inc(count)

    async def _absorb_newer(self, connection: AsyncConnection, retried: list["Settled"]) -> None:
        """A delivery going back to pending takes in the one queued for its record while it was
        in flight (never sent: it waited for this one), newer values winning. So a record keeps
        one pending delivery, and later changes coalesce into the one that goes out last."""
        if not retried:
            return
        kept_ids = {delivery.id for delivery in retried}
        table = _DELIVERIES
        rows = await connection.execute(
            select(
                table.c.id,
                table.c.contact_id,
                table.c["values"],
                table.c.first_received_at,
                table.c.source_event,
            )
            .where(
                among(connection.dialect, table.c.contact_id, {d.contact_id for d in retried}),
                table.c.target == self.target,
                table.c.status == DeliveryStatus.PENDING,
            )
            .order_by(table.c.id)
            .with_for_update()
        )
        kept: dict[int, dict[str, Any]] = {}  # by contact: the retried delivery's new columns
        absorbed: list[int] = []
        grown: set[int] = set()
        for row in rows:
            if row.id in kept_ids:
                kept[row.contact_id] = {
                    "id": row.id,
                    "values": dict(row.values),
                    "first_received_at": row.first_received_at,
                    "source_event": row.source_event,
                }
            elif (merged := kept.get(row.contact_id)) is not None:
                # Queued after the retried one: its values are newer and win.
                merged["values"] = {**merged["values"], **row.values}
                merged["first_received_at"] = min(
                    merged["first_received_at"], row.first_received_at
                )
                merged["source_event"] = row.source_event
                absorbed.append(row.id)
                grown.add(row.contact_id)
        if absorbed:
            await update_rows(connection, table, [kept[contact_id] for contact_id in grown])
            await connection.execute(
                delete(table).where(among(connection.dialect, table.c.id, absorbed))
            )

    def _apply(self, delivery: "Settled", item: ClaimT, result: Result, now: datetime) -> str:
        """Move the delivery to its next state; returns the outcome's name."""
        context = {"fields": {"delivery_id": item.id, "contact_id": item.contact_id}}
        if result.ok:
            delivery.status = DeliveryStatus.DONE
            delivery.delivered_at = now
            delivery.last_error = delivery.retrying_since = None
            return "done"
        delivery.last_error = result.message
        if result.transient and self._may_retry(delivery, item, now):
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

    def _may_retry(self, delivery: "Settled", item: ClaimT, now: datetime) -> bool:
        """Time, not count, ends a delivery: it retries for the window after its first failure
        in a row; `max_attempts` only bounds that."""
        delivery.retrying_since = delivery.retrying_since or now
        window = timedelta(seconds=self.config.retry_window_seconds)
        return item.attempts < self.config.max_attempts and now - delivery.retrying_since < window


def _outcome(results: Iterable[Result]) -> tuple[Outcome, str | None]:
    """What a batch says about the platform: a whole-call failure, an answer, or nothing (only
    throttling, or an error of ours)."""
    answered = False
    for result in results:
        if result.outage:
            return Outcome.OUTAGE, result.message
        answered = answered or result.ok or not result.transient or result.code is not None
    return (Outcome.ANSWERED if answered else Outcome.NONE), None


@dataclass(eq=False)
class Settled:
    """A claimed delivery as settling reads and rewrites it (one bulk UPDATE per batch)."""

    id: int
    contact_id: int
    status: str
    attempts: int
    operation: str
    first_received_at: datetime
    retrying_since: datetime | None
    history: list[dict[str, Any]]
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None

    @classmethod
    async def load(cls, connection: AsyncConnection, ids: set[int]) -> dict[int, "Settled"]:
        columns = [_DELIVERIES.c[f.name] for f in fields(cls)]
        rows = await connection.execute(
            select(*columns).where(among(connection.dialect, _DELIVERIES.c.id, ids))
        )
        return {row.id: cls(*row) for row in rows}

    def row(self, now: datetime) -> dict[str, Any]:
        """Its new state, lease released."""
        return {
            "id": self.id,
            "status": self.status,
            "operation": self.operation,
            "retrying_since": self.retrying_since,
            "history": self.history,
            "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at,
            "delivered_at": self.delivered_at,
            "lease_until": None,
            "updated_at": now,
        }
