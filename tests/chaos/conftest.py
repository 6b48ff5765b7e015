"""Fixtures of the chaos tests: fake platforms behind a flaky network, and the service's env."""

import os
from collections.abc import Iterator

import pytest
from fakes.hubspot import FakeHubSpot, create_hubspot_app
from fakes.salesforce import FakeSalesforce, create_salesforce_app
from fakes.server import FakeServer
from support.chaos import FlakyNetwork
from support.service import ADMIN_TOKEN, APP_ID, HUBSPOT_SECRET, PORTAL_ID, SALESFORCE_ORG_ID


@pytest.fixture
def salesforce() -> FakeSalesforce:
    return FakeSalesforce(org_id=SALESFORCE_ORG_ID)


@pytest.fixture
def hubspot() -> FakeHubSpot:
    return FakeHubSpot(portal_id=PORTAL_ID, shuffle_batch_results=True)


@pytest.fixture
def salesforce_network(salesforce: FakeSalesforce) -> FlakyNetwork:
    """Off until a test turns it on (``lost``/``slow`` are shares of API calls)."""
    return FlakyNetwork(
        create_salesforce_app(salesforce), FakeSalesforce.token_path, lost=0, slow=0
    )


@pytest.fixture
def hubspot_network(hubspot: FakeHubSpot) -> FlakyNetwork:
    return FlakyNetwork(create_hubspot_app(hubspot), FakeHubSpot.token_path, lost=0, slow=0)


@pytest.fixture
def salesforce_server(salesforce_network: FlakyNetwork) -> Iterator[FakeServer]:
    with FakeServer(salesforce_network) as server:
        yield server


@pytest.fixture
def hubspot_server(hubspot_network: FlakyNetwork) -> Iterator[FakeServer]:
    with FakeServer(hubspot_network) as server:
        yield server


@pytest.fixture
def platform_env(
    salesforce: FakeSalesforce,
    hubspot: FakeHubSpot,
    salesforce_server: FakeServer,
    hubspot_server: FakeServer,
) -> dict[str, str]:
    """Everything the service needs except the database."""
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
