"""The worker step that turns inbox events into mirror updates, decisions and deliveries."""

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.db import is_sqlite, transaction
from syncgate.delivery.retry import retry_delay
from syncgate.inbox.models import InboxEvent, InboxStatus, Source
from syncgate.logging import log_context
from syncgate.metrics import DECISIONS
from syncgate.models import utc_now
from syncgate.platforms.hubspot.client import HubSpotClient, HubSpotError
from syncgate.platforms.hubspot.events import HubSpotEvent
from syncgate.sync.mapping import load_mappings
from syncgate.sync.preferences import load_settings
from syncgate.sync.processor import (
    ProcessingContext,
    hubspot_properties_to_read,
    process_hubspot_event,
    round_keys,
)
from syncgate.sync.round_cache import RoundCache
from syncgate.sync.salesforce_events import process_salesforce_event
from syncgate.sync.segments import active_segments, filter_properties

log = logging.getLogger("syncgate.inbox")

BATCH_SIZE = 100
# SQLite has one write lock: webhook intake waits while a round's transaction holds it, so
# rounds there stay short (about 0.1-0.2 s) to keep acknowledgements quick.
SQLITE_BATCH_SIZE = 50
# Longer than one round can take; an event whose worker died is claimed again after it.
LEASE = timedelta(seconds=120)


class InboxProcessor:
    def __init__(
        self,
        config: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        hubspot: HubSpotClient | None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.hubspot = hubspot
        self.batch_size = SQLITE_BATCH_SIZE if is_sqlite(config.database_url) else BATCH_SIZE

    async def _claim(self) -> tuple[list[int], ProcessingContext, list[str]]:
        async with transaction(self.session_factory) as session:
            now = utc_now()
            ids = list(
                (
                    await session.scalars(
                        select(InboxEvent.id)
                        .where(
                            InboxEvent.status == InboxStatus.PENDING,
                            InboxEvent.next_attempt_at <= now,
                        )
                        .order_by(InboxEvent.id)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            if not ids:
                return [], await self._context(session), []
            await session.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(ids))
                .values(next_attempt_at=now + LEASE, attempts=InboxEvent.attempts + 1)
            )
            creations = (
                await session.scalars(
                    select(InboxEvent.payload).where(
                        InboxEvent.id.in_(ids),
                        InboxEvent.source == Source.HUBSPOT,
                        InboxEvent.kind == "contact.creation",
                    )
                )
            ).all()
            created_ids = [str(HubSpotEvent.model_validate(p).object_id) for p in creations]
            return ids, await self._context(session), created_ids

    async def _context(self, session: AsyncSession) -> ProcessingContext:
        settings = await load_settings(session)
        return ProcessingContext(
            config=self.config,
            mappings=await load_mappings(session),
            inclusion_segment_id=settings.inclusion_segment_id,
            new_contacts_as=settings.new_contacts_as,
            create_from_leads=settings.create_from_leads,
            create_from_contacts=settings.create_from_contacts,
            active_segments=await active_segments(session),
        )

    async def _read_new_contacts(
        self, ctx: ProcessingContext, hubspot_ids: Sequence[str]
    ) -> set[str]:
        """Read created contacts from HubSpot before the transaction; returns ids to retry later."""
        retry: set[str] = set()
        if not hubspot_ids:
            return retry
        if self.hubspot is None:
            for hubspot_id in hubspot_ids:
                ctx.hubspot_read_errors[hubspot_id] = "no HubSpot API credentials are configured"
            return retry
        async with self.session_factory() as session:
            filtered = await filter_properties(session)
        properties = hubspot_properties_to_read(ctx.mappings, filtered)
        wanted = list(dict.fromkeys(hubspot_ids))
        try:
            found = {c.id: c for c in await self.hubspot.batch_read(wanted, properties)}
        except HubSpotError as error:
            # Transient, or permanent but often a fixable setup problem: retry with backoff until
            # the attempts run out, then the event is marked failed with the reason.
            log.warning("reading new contacts from HubSpot failed; will retry: %s", error)
            return set(wanted)
        for hubspot_id in wanted:
            ctx.hubspot_reads[hubspot_id] = found.get(hubspot_id)  # absent: deleted since
        return retry

    async def run_once(self) -> int:
        """Process one batch of due events; returns how many were claimed."""
        ids, ctx, created_ids = await self._claim()
        if not ids:
            return 0
        retry = await self._read_new_contacts(ctx, created_ids)
        try:
            await self._process(ctx, ids, retry, together=True)
        except Exception:
            # Nothing of the round was kept; one by one, a failing event fails alone.
            log.exception("processing the round together failed; processing its events one by one")
            ctx.recorded.clear()
            await self._process(ctx, ids, retry, together=False)
        for direction, decision in ctx.recorded:
            DECISIONS.labels(direction.value, decision.value).inc()
        return len(ids)

    async def _process(
        self, ctx: ProcessingContext, ids: list[int], retry: set[str], *, together: bool
    ) -> None:
        """Process the claimed events in one transaction: `together` shares one RoundCache and
        lets any error abort the round; otherwise each event runs in its own savepoint."""
        try:
            async with transaction(self.session_factory) as session:
                events = (
                    await session.scalars(
                        select(InboxEvent)
                        .where(InboxEvent.id.in_(ids))
                        .order_by(InboxEvent.occurred_at_ms, InboxEvent.id)
                    )
                ).all()
                if together:
                    ctx.cache = await RoundCache.load(session, round_keys(ctx, events))
                for event in events:
                    if ctx.cache is not None and not ctx.cache.serves(event):
                        # This event reads and writes the database itself: bring it up to date.
                        await ctx.cache.write(session)
                        ctx.cache = None
                    await self._process_one(session, ctx, event, retry, isolated=not together)
                if ctx.cache is not None:
                    await ctx.cache.write(session)
        finally:
            ctx.cache = None

    async def _process_one(
        self,
        session: AsyncSession,
        ctx: ProcessingContext,
        event: InboxEvent,
        retry: set[str],
        *,
        isolated: bool,
    ) -> None:
        attempts = event.attempts
        with log_context(event_id=event.id, source=event.source):
            if (
                event.kind == "contact.creation"
                and event.object_key.removeprefix("hubspot:") in retry
            ):
                self._postpone(event, attempts, "reading the contact from HubSpot failed")
                return
            recorded = len(ctx.recorded)
            if isolated:
                try:
                    async with session.begin_nested():
                        await self._apply(session, ctx, event)
                except Exception as error:
                    del ctx.recorded[recorded:]
                    log.exception("event processing failed")
                    self._postpone(event, attempts, f"{type(error).__name__}: {error}")
                    return
            else:
                await self._apply(session, ctx, event)
            event.status = InboxStatus.DONE
            event.processed_at = utc_now()
            event.last_error = None
            outcomes = [decision.value for _, decision in ctx.recorded[recorded:]]
            log.info("processed %s: %s", event.kind, ", ".join(outcomes) or "no decision")

    @staticmethod
    async def _apply(session: AsyncSession, ctx: ProcessingContext, event: InboxEvent) -> None:
        if event.source == Source.HUBSPOT:
            await process_hubspot_event(session, ctx, event)
        else:
            await process_salesforce_event(session, ctx, event)

    def _postpone(self, event: InboxEvent, attempts: int, error: str) -> None:
        event.last_error = error[:2000]
        window = timedelta(seconds=self.config.retry_window_seconds)
        if attempts >= self.config.max_attempts or utc_now() - event.received_at >= window:
            event.status = InboxStatus.FAILED
        else:
            event.next_attempt_at = utc_now() + retry_delay(self.config, attempts)
