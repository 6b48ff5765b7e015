"""The worker loop: processing and delivery, beside (or apart from) the HTTP server."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.delivery.base import Deliverer
from app.delivery.hubspot import HubSpotDeliverer
from app.delivery.salesforce import SalesforceDeliverer
from app.errors import is_store_outage
from app.inbox.processing import InboxProcessor
from app.jobs.runner import JobRunner
from app.platforms.hubspot.client import HubSpotClient
from app.platforms.salesforce.client import SalesforceClient

log = logging.getLogger("syncgate.worker")

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class Worker:
    """Runs each step in turn; sleeps up to `worker_poll_seconds` when a round found no work."""

    def __init__(self, config: Settings, session_factory: async_sessionmaker[AsyncSession]):
        self.config = config
        self.session_factory = session_factory
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        hubspot = HubSpotClient.from_settings(config, self.http)
        salesforce = SalesforceClient.from_settings(config, self.http)
        self.inbox = InboxProcessor(config, session_factory, hubspot)
        self.deliverers: list[Deliverer[Any, Any]] = [
            SalesforceDeliverer(config, session_factory, salesforce),
            HubSpotDeliverer(config, session_factory, hubspot),
        ]
        self.jobs = JobRunner(config, session_factory, hubspot, salesforce)

    async def run_once(self) -> bool:
        """One round over every step; True when any step did some work."""
        processed = await self._step("inbox", self.inbox.run_once)
        # A full inbox batch means more events are waiting: let deliveries fill up.
        backlog = processed >= self.inbox.batch_size
        done = processed
        for deliverer in self.deliverers:
            done += await self._step(
                deliverer.target.value, partial(deliverer.run_once, backlog=backlog)
            )
        done += await self._step("jobs", self.jobs.run_once)
        return done > 0

    async def _step(self, name: str, step: Callable[[], Awaitable[int]]) -> int:
        try:
            return await step()
        except Exception as error:
            if is_store_outage(error):
                log.warning("database unavailable; %s step will retry", name)
            else:
                log.exception("%s step failed", name)
            return 0

    async def run_forever(self) -> None:
        log.info("worker started")
        try:
            while True:
                if not await self.run_once():
                    await asyncio.sleep(self.config.worker_poll_seconds)
        finally:
            await self.http.aclose()
