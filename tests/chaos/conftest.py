"""Fixtures of the chaos tests: the fake platforms behind a flaky network (support/platforms.py
builds the service's environment from these)."""

from collections.abc import Iterator

import pytest
from fakes.hubspot import FakeHubSpot, create_hubspot_app
from fakes.salesforce import FakeSalesforce, create_salesforce_app
from fakes.server import FakeServer
from support.chaos import FlakyNetwork
from support.service import PORTAL_ID, SALESFORCE_ORG_ID


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
