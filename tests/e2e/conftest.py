"""Fixtures of the end-to-end tests: fresh fake platforms per test and service processes."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.hubspot import FakeHubSpot, create_hubspot_app
from fakes.salesforce import FakeSalesforce, create_salesforce_app
from fakes.server import FakeServer
from support.service import (
    ADMIN_TOKEN,
    APP_ID,
    HUBSPOT_SECRET,
    PORTAL_ID,
    SALESFORCE_ORG_ID,
    Service,
)


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
    fake = FakeHubSpot(portal_id=PORTAL_ID, shuffle_batch_results=True)
    hubspot_server.app = create_hubspot_app(fake)
    return fake


@pytest.fixture
def service_env(
    database_url: str,
    salesforce: FakeSalesforce,
    hubspot: FakeHubSpot,
    salesforce_server: FakeServer,
    hubspot_server: FakeServer,
) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SYNCGATE_")}
    return {
        **keep,
        "SYNCGATE_DATABASE_URL": database_url,
        "SYNCGATE_ADMIN_TOKEN": ADMIN_TOKEN,
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


@pytest.fixture
def make_service(
    service_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Service]]:
    services: list[Service] = []

    def make(**env: str) -> Service:
        service = Service({**service_env, **env}, tmp_path)
        services.append(service)
        return service

    yield make
    for service in services:
        service.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for service in services:
            print(service.logs()[-20000:])


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service().start()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
