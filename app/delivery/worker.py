"""The worker loop: processing and delivery, beside (or apart from) the HTTP server."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
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
        self.steps: list[tuple[str, Callable[[], Awaitable[int]]]] = [
            ("inbox", InboxProcessor(config, session_factory, hubspot).run_once),
            ("salesforce", SalesforceDeliverer(config, session_factory, salesforce).run_once),
            ("hubspot", HubSpotDeliverer(config, session_factory, hubspot).run_once),
            ("jobs", JobRunner(config, session_factory, hubspot, salesforce).run_once),
        ]

    async def run_once(self) -> bool:
        """One round over every step; True when any step did some work."""
        busy = False
        for name, step in self.steps:
            try:
                busy = await step() > 0 or busy
            except Exception as error:
                if is_store_outage(error):
                    log.warning("database unavailable; %s step will retry", name)
                else:
                    log.exception("%s step failed", name)
        return busy

    async def run_forever(self) -> None:
        log.info("worker started")
        try:
            while True:
                if not await self.run_once():
                    await asyncio.sleep(self.config.worker_poll_seconds)
        finally:
            await self.http.aclose()
