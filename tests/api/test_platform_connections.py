"""Jobs that need a platform's API answer 409 `not_configured` while it is not connected, and
one rule says what "connected" is: the one the platform clients follow."""

import itertools

import httpx
import pytest
from support.api import Seed

from syncgate.config import Settings
from syncgate.connections.credentials import HUBSPOT, SALESFORCE, is_connected
from syncgate.platforms.hubspot.client import HubSpotClient
from syncgate.platforms.salesforce.client import SalesforceClient

ACTIVE = {"name": "All", "type": "active", "filter": {"property": "email", "operator": "is_known"}}


@pytest.mark.parametrize(
    ("route", "body", "platform"),
    [
        ("/api/segments/{segment}/resync", None, "Salesforce"),
        (
            "/api/imports/salesforce",
            {"object": "Lead", "ids": ["00Q5g00009OmTestAA"]},
            "Salesforce",
        ),
        ("/api/backfill/hubspot", None, "HubSpot"),
    ],
)
async def test_jobs_need_their_platform_connected(
    client: httpx.AsyncClient, seed: Seed, route: str, body: object, platform: str
) -> None:
    await seed("a@example.com")
    segment = (await client.post("/api/segments", json=ACTIVE)).json()["id"]
    response = await client.post(route.format(segment=segment), json=body)
    assert response.status_code == 409
    assert response.json()["code"] == "not_configured"
    assert response.json()["message"].startswith(f"{platform} is not connected")


async def test_resync_of_an_unknown_segment_is_404_before_anything_else(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/api/segments/999/resync")).status_code == 404


async def test_sync_status_says_which_platform_is_not_connected(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    contact = await seed("a@example.com")
    status = (await client.get(f"/api/contacts/{contact}/sync-status")).json()
    assert status["would_sync"] is True  # the gate lets it through; delivery waits
    assert "But Salesforce is not connected" in status["reason"]
    assert "But HubSpot is not connected" in status["reason"]


CREDENTIALS = {
    "hubspot_access_token": "pat-na1-x",
    "hubspot_client_id": "id",
    "hubspot_client_secret": "secret",
    "hubspot_refresh_token": "refresh",
    "salesforce_client_id": "id",
    "salesforce_client_secret": "secret",
    "salesforce_refresh_token": "refresh",
}


@pytest.mark.parametrize(
    "given",
    [
        dict(combination)
        for size in range(len(CREDENTIALS) + 1)
        for combination in itertools.combinations(CREDENTIALS.items(), size)
    ],
)
async def test_connected_means_the_platform_client_exists(given: dict[str, str]) -> None:
    settings = Settings(_env_file=None, **given)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        hubspot = HubSpotClient.from_settings(settings, http)
        salesforce = SalesforceClient.from_settings(settings, http)
    assert is_connected(settings, HUBSPOT) == (hubspot is not None)
    assert is_connected(settings, SALESFORCE) == (salesforce is not None)
