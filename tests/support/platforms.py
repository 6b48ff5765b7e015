"""Pytest plugin (tests/conftest.py loads it): fake HubSpot and Salesforce servers for tests
that start the real service process, and the service's environment pointing at them.

The servers live for the whole run; each test gets fresh fakes behind them. A conftest may
override any of these fixtures (tests/chaos puts a flaky network in front of the fakes).
"""

import os
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.hubspot import FakeHubSpot, create_hubspot_app
from fakes.salesforce import FakeSalesforce, create_salesforce_app
from fakes.server import FakeServer

from support.service import ADMIN_TOKEN, APP_ID, HUBSPOT_SECRET, PORTAL_ID, SALESFORCE_ORG_ID


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
def platform_env(
    salesforce: FakeSalesforce,
    hubspot: FakeHubSpot,
    salesforce_server: FakeServer,
    hubspot_server: FakeServer,
) -> dict[str, str]:
    """Everything the service needs except the database, with quick polls and retries."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SYNCGATE_")}
    return {
        **keep,
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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can print a failed test's logs."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
