"""In-process integration harness: the real processing and delivery steps, a real database and
fake HubSpot/Salesforce servers. Shared by tests/delivery and tests/processing."""

from __future__ import annotations

import atexit
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from fakes.hubspot import FakeHubSpot, create_hubspot_app
from fakes.salesforce import FakeSalesforce, create_salesforce_app
from fakes.server import FakeServer
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.db import transaction
from syncgate.delivery.models import Delivery, Operation, Target
from syncgate.delivery.salesforce import SalesforceDeliverer
from syncgate.inbox.models import InboxEvent
from syncgate.inbox.store import store_hubspot_events
from syncgate.models import utc_now
from syncgate.platforms.hubspot.client import HubSpotClient, RequestBudget
from syncgate.platforms.hubspot.events import parse_body
from syncgate.platforms.salesforce.client import SalesforceClient
from syncgate.processing.round import InboxRounds
from syncgate.sync.mapping import Mapping, replace_mappings
from syncgate.sync.models import Contact, DecisionRecord
from syncgate.sync.preferences import load_settings

PORTAL_ID = 62515
APP_ID = 424242
OTHER_PORTAL_ID = 99999

_servers: dict[str, FakeServer] = {}
_event_ids = itertools.count(5_000_000)


def _server(name: str, app: Any) -> FakeServer:
    """One long-lived server per platform for the whole run; each test swaps in a fresh fake."""
    server = _servers.get(name)
    if server is None:
        server = FakeServer(app).start()
        atexit.register(server.stop)
        _servers[name] = server
    else:
        server.app = app
    return server


def now_ms() -> int:
    return int(time.time() * 1000)


def event(kind: str, object_id: int | str, **fields: Any) -> dict[str, Any]:
    """A HubSpot webhook event as HubSpot sends it (occurredAt now unless given)."""
    return {
        "eventId": next(_event_ids),
        "subscriptionId": 4578255,
        "portalId": fields.pop("portalId", PORTAL_ID),
        "appId": APP_ID,
        "occurredAt": fields.pop("occurredAt", now_ms()),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": int(object_id),
        "changeSource": "CRM_UI",
        "sourceId": "userId:52530071",
        **fields,
    }


def change(object_id: int | str, name: str, value: str | None, **fields: Any) -> dict[str, Any]:
    """A `contact.propertyChange` event."""
    return event(
        "contact.propertyChange", object_id, propertyName=name, propertyValue=value, **fields
    )


@dataclass
class Env:
    """Everything a test drives: settings, database, fakes and the real platform clients."""

    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    salesforce: FakeSalesforce
    hubspot: FakeHubSpot
    salesforce_url: str
    hubspot_url: str
    http: httpx.AsyncClient

    def configure(self, **update: Any) -> None:
        """Change settings for the steps built from now on (e.g. hubspot_portal_id)."""
        self.settings = self.settings.model_copy(update=update)

    def salesforce_client(self, http: httpx.AsyncClient | None = None) -> SalesforceClient:
        client = SalesforceClient.from_settings(self.settings, http or self.http)
        assert client is not None
        return client

    def hubspot_client(self) -> HubSpotClient:
        client = HubSpotClient.from_settings(self.settings, self.http)
        assert client is not None
        # The default budget would sleep through HubSpot's burst window in large tests.
        client.budget = RequestBudget(per_window=100_000)
        return client

    async def send(self, *events: dict[str, Any]) -> int:
        """Store events in the inbox exactly as the webhook route does; returns how many new."""
        parsed = parse_body(json.dumps(list(events)).encode())
        async with transaction(self.session_factory) as session:
            return await store_hubspot_events(session, parsed)

    async def process(self) -> int:
        """Run the processing step until no due event is left; returns events claimed."""
        processor = InboxRounds(self.settings, self.session_factory, self.hubspot_client())
        total = 0
        while claimed := await processor.run_once():
            total += claimed
        return total

    async def deliver(self, client: SalesforceClient | None = None) -> int:
        """Run the Salesforce delivery step until no due delivery is left."""
        deliverer = SalesforceDeliverer(
            self.settings, self.session_factory, client or self.salesforce_client()
        )
        total = 0
        while claimed := await deliverer.run_once():
            total += claimed
        return total

    async def deliver_once(self, client: SalesforceClient | None = None) -> int:
        deliverer = SalesforceDeliverer(
            self.settings, self.session_factory, client or self.salesforce_client()
        )
        return await deliverer.run_once()

    async def sync(self, *events: dict[str, Any]) -> None:
        """Store, process and deliver."""
        if events:
            await self.send(*events)
        await self.process()
        await self.deliver()

    # -- database helpers ------------------------------------------------------------------------

    async def contact(self, hubspot_id: int | str) -> Contact:
        async with self.session_factory() as session:
            found = await session.scalar(
                select(Contact).where(Contact.hubspot_id == str(hubspot_id))
            )
            assert found is not None, f"no contact {hubspot_id}"
            return found

    async def decisions(self, hubspot_id: int | str | None = None) -> list[DecisionRecord]:
        """Decisions oldest first, for one contact when given."""
        async with self.session_factory() as session:
            query = select(DecisionRecord).order_by(DecisionRecord.id)
            if hubspot_id is not None:
                contact_id = await session.scalar(
                    select(Contact.id).where(Contact.hubspot_id == str(hubspot_id))
                )
                query = query.where(DecisionRecord.contact_id == contact_id)
            return list((await session.scalars(query)).all())

    async def deliveries(self) -> list[Delivery]:
        async with self.session_factory() as session:
            return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())

    async def queue_creates(self, count: int, *, created_at: datetime | None = None) -> None:
        """`count` new contacts, each with a Salesforce create queued, as processing would have
        queued it (covered elsewhere): keeps a delivery test fast."""
        async with transaction(self.session_factory) as session:
            first = await session.scalar(select(func.count()).select_from(Contact)) or 0
            contacts = [
                Contact(hubspot_id=str(1000 + i), email=f"bulk{i}@example.com", properties=[])
                for i in range(first, first + count)
            ]
            session.add_all(contacts)
            await session.flush()
            session.add_all(
                Delivery(
                    target=Target.SALESFORCE,
                    operation=Operation.CREATE,
                    contact_id=contact.id,
                    values={"email": contact.email, "lastname": f"Bulk {contact.hubspot_id}"},
                    first_received_at=utc_now(),
                    created_at=created_at or utc_now(),
                    history=[],
                )
                for contact in contacts
            )

    async def inbox(self) -> list[InboxEvent]:
        async with self.session_factory() as session:
            return list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())

    async def make_due(self) -> None:
        """Let every postponed event and delivery be due now, instead of sleeping."""
        past = utc_now() - timedelta(seconds=1)
        async with transaction(self.session_factory) as session:
            await session.execute(update(Delivery).values(next_attempt_at=past))
            await session.execute(
                update(InboxEvent)
                .where(InboxEvent.status == "pending")
                .values(next_attempt_at=past)
            )

    async def set_mappings(self, mappings: list[Mapping]) -> None:
        async with transaction(self.session_factory) as session:
            await replace_mappings(session, mappings)

    async def set_new_contacts_as(self, object_type: str) -> None:
        async with transaction(self.session_factory) as session:
            (await load_settings(session)).new_contacts_as = object_type


@asynccontextmanager
async def open_env(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Env]:
    """Fresh fakes behind the shared servers, and settings pointing at them."""
    salesforce = FakeSalesforce()
    hubspot = FakeHubSpot(portal_id=PORTAL_ID)
    sf_server = _server("salesforce", create_salesforce_app(salesforce))
    hs_server = _server("hubspot", create_hubspot_app(hubspot))
    configured = settings.model_copy(
        update={
            "salesforce_login_url": sf_server.url,
            "salesforce_client_id": salesforce.client_id,
            "salesforce_client_secret": salesforce.client_secret,
            "hubspot_api_base": hs_server.url,
            "hubspot_access_token": hubspot.access_token,
            "hubspot_app_id": APP_ID,
            "retry_base_seconds": 1.0,
            "retry_max_seconds": 60.0,
        }
    )
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield Env(
            configured, session_factory, salesforce, hubspot, sf_server.url, hs_server.url, http
        )
