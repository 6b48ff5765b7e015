"""Fixtures of the console tests: an ASGI client with the console's cookies, seeded contacts,
and (for the browser tests) the real service process with fake platforms."""

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console.helpers import Console
from fakes.hubspot import FakeHubSpot, create_hubspot_app
from fakes.salesforce import FakeSalesforce, create_salesforce_app
from fakes.server import FakeServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.service import (
    ADMIN_TOKEN as E2E_ADMIN_TOKEN,
)
from support.service import (
    APP_ID,
    HUBSPOT_SECRET,
    PORTAL_ID,
    SALESFORCE_ORG_ID,
    Service,
)

from app.config import Settings
from app.main import create_app
from app.sync.contacts import upsert_hubspot_contact


@pytest.fixture
def console_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, admin_token="console-test-token", _env_file=None)


@pytest.fixture
async def anon(console_settings: Settings) -> AsyncIterator[Console]:
    """The console app with nobody signed in (no bearer token either)."""
    app = create_app(console_settings, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield Console(http, "console-test-token")


@pytest.fixture
async def console(anon: Console) -> Console:
    """The console with an operator signed in."""
    response = await anon.sign_in()
    assert response.status_code == 303, response.text
    return anon


@pytest.fixture
def seed(session_factory: async_sessionmaker[AsyncSession]) -> Callable[..., Any]:
    """Store a HubSpot contact: `await seed("a@example.com", lifecyclestage="customer")`."""
    numbers = itertools.count(1)

    async def seed(email: str | None = None, **properties: str | None) -> int:
        values: dict[str, str | None] = {"email": email} if email is not None else {}
        async with session_factory() as session, session.begin():
            contact = await upsert_hubspot_contact(
                session, f"hs-{next(numbers)}", {**values, **properties}, 1_000
            )
            return contact.id

    return seed


# --- the real service, for the browser tests (the pattern of tests/e2e/conftest.py) ----------


@pytest.fixture(scope="session")
def salesforce_server() -> Iterator[FakeServer]:
    with FakeServer(create_salesforce_app(FakeSalesforce(org_id=SALESFORCE_ORG_ID))) as server:
        yield server


@pytest.fixture(scope="session")
def hubspot_server() -> Iterator[FakeServer]:
    with FakeServer(create_hubspot_app(FakeHubSpot(portal_id=PORTAL_ID))) as server:
        yield server


@pytest.fixture
def salesforce(salesforce_server: FakeServer) -> FakeSalesforce:
    fake = FakeSalesforce(org_id=SALESFORCE_ORG_ID)
    salesforce_server.app = create_salesforce_app(fake)
    return fake


@pytest.fixture
def hubspot(hubspot_server: FakeServer) -> FakeHubSpot:
    fake = FakeHubSpot(portal_id=PORTAL_ID)
    hubspot_server.app = create_hubspot_app(fake)
    return fake


@pytest.fixture
def service(
    database_url: str,
    salesforce: FakeSalesforce,
    hubspot: FakeHubSpot,
    salesforce_server: FakeServer,
    hubspot_server: FakeServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Service]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SYNCGATE_")}
    env = {
        **keep,
        "SYNCGATE_DATABASE_URL": database_url,
        "SYNCGATE_ADMIN_TOKEN": E2E_ADMIN_TOKEN,
        "SYNCGATE_HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
        "SYNCGATE_HUBSPOT_APP_ID": str(APP_ID),
        "SYNCGATE_HUBSPOT_PORTAL_ID": str(PORTAL_ID),
        "SYNCGATE_HUBSPOT_ACCESS_TOKEN": hubspot.access_token or "",
        "SYNCGATE_HUBSPOT_API_BASE": hubspot_server.url,
        "SYNCGATE_SALESFORCE_ORG_ID": SALESFORCE_ORG_ID,
        "SYNCGATE_SALESFORCE_LOGIN_URL": salesforce_server.url,
        "SYNCGATE_SALESFORCE_CLIENT_ID": salesforce.client_id,
        "SYNCGATE_SALESFORCE_CLIENT_SECRET": salesforce.client_secret,
        "SYNCGATE_WORKER_POLL_SECONDS": "0.05",
        "SYNCGATE_RETRY_BASE_SECONDS": "0.2",
        "SYNCGATE_RETRY_MAX_SECONDS": "2",
    }
    running = Service(env, tmp_path).start()
    yield running
    running.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(running.logs()[-20000:])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
