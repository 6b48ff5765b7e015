"""The worker loop: processing and delivery, beside (or apart from) the HTTP server."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.connections.budget import shared_hubspot_budget
from syncgate.db import is_sqlite
from syncgate.delivery.base import Deliverer
from syncgate.delivery.hubspot import HubSpotDeliverer
from syncgate.delivery.salesforce import SalesforceDeliverer
from syncgate.errors import is_store_outage
from syncgate.jobs.runner import JobRunner
from syncgate.platforms.hubspot.client import HubSpotClient
from syncgate.platforms.salesforce.client import SalesforceClient
from syncgate.processing.round import InboxRounds

log = logging.getLogger("syncgate.worker")

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# After a partial round, a step waits this long: under a steady trickle of events, rounds of
# one or two events each would cost more per event than they save in latency.
GATHER_SECONDS = 0.1


class Worker:
    """Runs processing, each delivery step and the jobs as concurrent loops, so a batch waiting
    on a platform's answer never holds up the next round of processing; while a backlog lasts,
    `batches_in_flight` per platform. Each loop sleeps up to `worker_poll_seconds` when it found
    no work; processing wakes the deliveries early."""

    def __init__(self, config: Settings, session_factory: async_sessionmaker[AsyncSession]):
        self.config = config
        self.session_factory = session_factory
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        budget = shared_hubspot_budget(config, session_factory)
        hubspot = HubSpotClient.from_settings(config, self.http, budget)
        salesforce = SalesforceClient.from_settings(config, self.http)
        self.inbox = InboxRounds(config, session_factory, hubspot)
        self.deliverers: list[Deliverer[Any, Any]] = [
            SalesforceDeliverer(config, session_factory, salesforce),
            HubSpotDeliverer(config, session_factory, hubspot),
        ]
        self.jobs = JobRunner(config, session_factory, hubspot, salesforce)
        # SQLite has one write lock: a second batch's claim and settle would only queue behind
        # the first's, and make webhook intake wait longer for it.
        self.batches_in_flight = 1 if is_sqlite(config.database_url) else 2
        self.inbox_has_backlog = False
        self.inbox_woken = asyncio.Event()
        self._deliveries_woken = [asyncio.Event() for _ in self.deliverers]

    def wake(self) -> None:
        """New events are in the inbox: process them now rather than after the idle wait."""
        self.inbox_woken.set()

    async def _process_inbox(self) -> int:
        processed = await self.inbox.run_once()
        # A full batch means more events are waiting: deliveries may hold partial batches.
        self.inbox_has_backlog = processed >= self.inbox.batch_size
        return processed

    async def run_forever(self) -> None:
        log.info("worker started")
        try:
            async with asyncio.TaskGroup() as loops:
                inbox = self._loop(
                    "inbox",
                    self._process_inbox,
                    self.inbox_woken,
                    full=self.inbox.batch_size,
                    wakes=self._deliveries_woken,
                )
                loops.create_task(inbox)
                for deliverer, woken in zip(self.deliverers, self._deliveries_woken, strict=True):
                    loops.create_task(self._deliveries(deliverer, woken))
                loops.create_task(self._loop("jobs", self.jobs.run_once, asyncio.Event(), full=1))
        finally:
            await self.inbox.close()
            await self.http.aclose()

    async def _deliveries(self, deliverer: Deliverer[Any, Any], woken: asyncio.Event) -> None:
        name = deliverer.target.value
        # Before the first batch: does the platform answer, and how much allowance is left?
        await self._step(f"{name} probe", deliverer.probe)
        send = partial(self._deliver, deliverer)
        full = deliverer.batch_size
        # While batches come full, the next is claimed and sent while the one before is settled.
        backlog = asyncio.Event()
        async with asyncio.TaskGroup() as batches:
            batches.create_task(self._loop(name, send, woken, full=full, when_full=backlog))
            for _ in range(self.batches_in_flight - 1):
                batches.create_task(self._loop(name, send, backlog, full=full, poll=False))

    async def _deliver(self, deliverer: Deliverer[Any, Any]) -> int:
        return await deliverer.run_once(backlog=self.inbox_has_backlog)

    async def _loop(
        self,
        name: str,
        step: Callable[[], Awaitable[int]],
        woken: asyncio.Event,
        *,
        full: int,
        wakes: Sequence[asyncio.Event] = (),
        when_full: asyncio.Event | None = None,
        poll: bool = True,
    ) -> None:
        """Run `step` again at once after a full batch, after a short pause after a partial
        one (so the next round has more to share its cost), else when woken (or polled)."""
        while True:
            woken.clear()  # a wake-up during the step below keeps it set: no work is missed
            if done := await self._step(name, step):
                for other in wakes:
                    other.set()
                if done < full:
                    await asyncio.sleep(GATHER_SECONDS)
                elif when_full is not None:
                    when_full.set()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    woken.wait(), self.config.worker_poll_seconds if poll else None
                )

    async def _step(self, name: str, step: Callable[[], Awaitable[int]]) -> int:
        try:
            return await step()
        except Exception as error:
            if is_store_outage(error):
                log.warning("database unavailable; %s step will retry", name)
            else:
                log.exception("%s step failed", name)
            return 0
