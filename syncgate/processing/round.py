"""The worker step that processes the inbox, a round at a time: the only way events are
processed, for a round of one as for a round of hundreds.

    claim (lease, parse once) → read ahead from HubSpot → one transaction:
        load the round's contacts, memberships, queued deliveries (a few set queries, locked)
        → apply each event in memory (mirror, segments, decide, queue)
        → write back in bulk (contacts, properties, deliveries, decisions, memberships, inbox)

While a full round is processed, the next one is claimed and read from HubSpot: a burst waits
on the database or on HubSpot, not on both in turn (on PostgreSQL: SQLite's one write lock
would only queue the claim behind the round).

A round that fails is run again as two halves, down to the one event that fails alone, which
is postponed with its error; the others are processed as if it had never been claimed.
"""

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.db import among, is_sqlite, transaction, update_rows
from syncgate.delivery.retry import retry_delay
from syncgate.errors import is_store_outage
from syncgate.inbox.models import InboxEvent, InboxStatus
from syncgate.logging import log_context
from syncgate.models import table_of, utc_now
from syncgate.platforms.hubspot.client import HubSpotClient
from syncgate.processing.apply import Postponed, Round, merge_survivor, merged_away
from syncgate.processing.claim import RoundContext, RoundEvent, claim, read_ahead
from syncgate.sync.batch import ContactBatch
from syncgate.sync.contacts import normalise_email

log = logging.getLogger("syncgate.processing")

BATCH_SIZE = 500
# SQLite has one write lock: webhook intake waits while a round's transaction holds it, so
# rounds there stay shorter (about 50 ms for 200 new contacts) to keep acknowledgements quick.
# Smaller rounds cost more: a round's own queries were a sixth of each event's CPU at 100.
SQLITE_BATCH_SIZE = 200
_INBOX = table_of(InboxEvent)


@dataclass
class _Keys:
    """The contacts a round touches."""

    hubspot_ids: set[str]
    create: set[str]  # HubSpot ids whose contact the round creates when the store has none
    salesforce_ids: set[str]
    emails: set[str]
    deletions: set[str]  # object keys of deleted contacts


def _keys(context: RoundContext, events: Iterable[RoundEvent]) -> _Keys:
    keys = _Keys(set(), set(), set(), set(), set())
    portal = context.config.hubspot_portal_id
    for event in events:
        if event.salesforce is not None:
            keys.salesforce_ids.add(event.salesforce.record_id)
            if email := normalise_email(event.salesforce.fields.get("Email")):
                keys.emails.add(email)
            continue
        parsed = event.hubspot
        if parsed is None or (portal is not None and parsed.portal_id != portal):
            continue
        hubspot_id = str(parsed.object_id)
        keys.hubspot_ids.add(hubspot_id)
        kind = parsed.subscription_type
        if hubspot_id in context.unreadable:
            continue
        if kind == "contact.propertyChange" and parsed.property_name:
            keys.create.add(hubspot_id)
        elif kind == "contact.creation":
            if context.read_error is not None or context.reads.get(hubspot_id) is not None:
                keys.create.add(hubspot_id)
        elif kind in ("contact.deletion", "contact.privacyDeletion"):
            keys.deletions.add(event.object_key)
        elif kind == "contact.merge":
            keys.create.add(merge_survivor(parsed))
            keys.hubspot_ids |= merged_away(parsed)
    return keys


async def _restores(connection: AsyncConnection, object_keys: set[str]) -> dict[str, int]:
    """The latest processed restore of each deleted contact."""
    if not object_keys:
        return {}
    rows = await connection.execute(
        select(_INBOX.c.object_key, func.max(_INBOX.c.occurred_at_ms))
        .where(
            among(connection.dialect, _INBOX.c.object_key, sorted(object_keys)),
            _INBOX.c.kind == "contact.restore",
            _INBOX.c.status == InboxStatus.DONE,
        )
        .group_by(_INBOX.c.object_key)
    )
    return {object_key: int(at) for object_key, at in rows}


class InboxRounds:
    def __init__(
        self,
        config: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        hubspot: HubSpotClient | None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.hubspot = hubspot
        sqlite = is_sqlite(config.database_url)
        self.batch_size = SQLITE_BATCH_SIZE if sqlite else BATCH_SIZE
        self.claim_ahead = not sqlite
        self._next: asyncio.Task[tuple[list[RoundEvent], RoundContext]] | None = None

    async def run_once(self) -> int:
        """Process one round of due events; returns how many were claimed."""
        claimed, self._next = self._next, None
        events, context = await (claimed or self._claim())
        if not events:
            return 0
        if self.claim_ahead and len(events) >= self.batch_size:
            self._next = asyncio.create_task(self._claim())
        await self._run(events, context)
        return len(events)

    async def close(self) -> None:
        """Stop claiming ahead; a round claimed already is claimed again when its lease ends,
        like the round a stopped worker was processing."""
        if (claiming := self._next) is not None:
            self._next = None
            claiming.cancel()
            await asyncio.wait([claiming])
            if not claiming.cancelled():
                claiming.exception()  # a failure before the cancel changes nothing now: dropped

    async def _claim(self) -> tuple[list[RoundEvent], RoundContext]:
        async with transaction(self.session_factory) as session:
            events, context, to_read = await claim(session, self.config, self.batch_size)
        if events:
            await read_ahead(self.hubspot, context, to_read)
        return events, context

    async def _run(self, events: list[RoundEvent], context: RoundContext) -> None:
        try:
            done = await self._process(events, context)
        except Exception as error:
            if is_store_outage(error) and not await self._store_answers():
                raise  # nothing to isolate: the events are claimed again when their lease ends
            if len(events) == 1:
                with log_context(event_id=events[0].id, source=events[0].source):
                    log.exception("event processing failed")
                await self._postpone(events[0], f"{type(error).__name__}: {error}")
                return
            half = len(events) // 2
            log.warning(
                "a round of %d events failed (%s: %s); processing its halves apart",
                len(events),
                type(error).__name__,
                error,
            )
            await self._run(events[:half], context)
            await self._run(events[half:], context)
            return
        done.batch.decisions.count()

    async def _process(self, events: list[RoundEvent], context: RoundContext) -> Round:
        ordered = sorted(events, key=lambda e: (e.occurred_at_ms, e.id))
        keys = _keys(context, ordered)
        async with transaction(self.session_factory) as session:
            connection = await session.connection()
            batch = await ContactBatch.load(
                connection,
                context.segments,
                hubspot_ids=keys.hubspot_ids,
                salesforce_ids=keys.salesforce_ids,
                emails=keys.emails,
            )
            # Inserted with the email read from HubSpot: the round rarely changes them again.
            emails = {
                hubspot_id: normalise_email(read.properties.get("email"))
                for hubspot_id in keys.create
                if (read := context.reads.get(hubspot_id)) is not None
            }
            await batch.create_hubspot_contacts(connection, keys.create, emails)
            work = Round(context, batch, await _restores(connection, keys.deletions))
            done: list[int] = []
            postponed: list[dict[str, object]] = []
            for event in ordered:
                mark = len(batch.decisions)
                with log_context(event_id=event.id, source=event.source):
                    try:
                        work.apply(event)
                    except Postponed as wait:
                        postponed.append(self._postponement(event, str(wait)))
                        continue
                    outcomes = [o.decision.value for o in batch.decisions.outcomes_since(mark)]
                    log.info("processed %s: %s", event.kind, ", ".join(outcomes) or "no decision")
                done.append(event.id)
            await batch.write(connection)
            now = utc_now()
            if done:
                await connection.execute(
                    update(_INBOX)
                    .where(among(connection.dialect, _INBOX.c.id, done))
                    .values(status=InboxStatus.DONE, processed_at=now, last_error=None)
                )
            await update_rows(connection, _INBOX, postponed)
        return work

    def _postponement(self, event: RoundEvent, error: str) -> dict[str, object]:
        """The inbox row of an event that waits: retried with backoff, failed once the retry
        window (or the attempts) are used up."""
        window = timedelta(seconds=self.config.retry_window_seconds)
        failed = (
            event.attempts >= self.config.max_attempts or utc_now() - event.received_at >= window
        )
        return {
            "id": event.id,
            "last_error": error[:2000],
            "status": InboxStatus.FAILED if failed else InboxStatus.PENDING,
            "next_attempt_at": utc_now() + retry_delay(self.config, event.attempts),
        }

    async def _postpone(self, event: RoundEvent, error: str) -> None:
        row = self._postponement(event, error)
        async with transaction(self.session_factory) as session:
            connection = await session.connection()
            await update_rows(connection, _INBOX, [row])

    async def _store_answers(self) -> bool:
        try:
            async with self.session_factory() as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            return False
        return True
