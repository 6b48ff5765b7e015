"""Fixtures of the hostile-input tests: real service processes shared by the module (starting
one takes seconds), a store seeded with one of everything, and the watch on /livez and RSS."""

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hostile.harness import Watch, client_from, own_address, snapshot
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.service import (
    ADMIN_TOKEN,
    HUBSPOT_SECRET,
    SALESFORCE_ORG_ID,
    Service,
    notification,
    outbound_message,
    property_change,
    salesforce_time,
)
from support.store import upsert_hubspot_contact

SALESFORCE_TOKEN = "hostile-salesforce-webhook-token"
SEEDED_EMAIL = "ada@example.com"


def base_env(database_url: str, **settings: str) -> dict[str, str]:
    """Both intakes on, no platform APIs (nothing an attack stored could be sent anywhere)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SYNCGATE_")}
    return {
        **keep,
        "SYNCGATE_DATABASE_URL": database_url,
        "SYNCGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SYNCGATE_HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
        "SYNCGATE_SALESFORCE_ORG_ID": SALESFORCE_ORG_ID,
        "SYNCGATE_SALESFORCE_WEBHOOK_TOKEN": SALESFORCE_TOKEN,
        **{f"SYNCGATE_{name.upper()}": value for name, value in settings.items()},
    }


@pytest.fixture(scope="module")
def start_service(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Service]]:
    """Start `syncgate serve --no-worker` with extra settings; stopped after the module."""
    services: list[Service] = []

    def start(**settings: str) -> Service:
        log_dir = tmp_path_factory.mktemp("hostile-service")
        service = Service(base_env(database_url, **settings), log_dir).start(worker=False)
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop()


@pytest.fixture(scope="module")
def service(start_service: Callable[..., Service]) -> Service:
    """The production shape: every setting at its default, the Salesforce token set."""
    return start_service()


class Store:
    """The service's store, seeded with one of everything an attack could change."""

    def __init__(self, service: Service, engine: Engine) -> None:
        self.service = service
        self.engine = engine

    async def seed(self, session_factory: async_sessionmaker[AsyncSession]) -> "Store":
        async with session_factory() as session, session.begin():
            await upsert_hubspot_contact(session, "501", {"email": SEEDED_EMAIL}, 1_000)
        now = time.time()
        accepted = self.service.send_hubspot([property_change(7, "email", "eve@example.com")])
        assert accepted.status_code == 200, accepted.text
        message = notification(
            "Lead",
            "00Q5g000009HostEAA",
            Email="grace@example.com",
            CreatedDate=salesforce_time(now),
            LastModifiedDate=salesforce_time(now),
        )
        acknowledged = self.service.http.post(
            f"/webhooks/salesforce?token={SALESFORCE_TOKEN}",
            content=outbound_message([message]),
            headers={"Content-Type": "text/xml; charset=UTF-8"},
        )
        assert acknowledged.status_code == 200, acknowledged.text
        segment = {"name": "Customers", "type": "static"}
        assert self.service.api.post("/api/segments", json=segment).status_code == 201
        return self

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return snapshot(self.engine)


@pytest.fixture
async def store(
    service: Service, sync_engine: Engine, session_factory: async_sessionmaker[AsyncSession]
) -> Store:
    return await Store(service, sync_engine).seed(session_factory)


@pytest.fixture
def watch(service: Service) -> Watch:
    return Watch(service)


Clients = Callable[..., httpx.Client]


@pytest.fixture
def clients() -> Iterator[Clients]:
    """`clients(service, **kwargs)`: a client of `service` sending from an address of its own."""
    made: list[httpx.Client] = []

    def make(service: Service, **kwargs: Any) -> httpx.Client:
        made.append(client_from(service, own_address(), **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


def log_entries(service: Service) -> list[dict[str, Any]]:
    """The service's JSON log lines so far."""
    return [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
