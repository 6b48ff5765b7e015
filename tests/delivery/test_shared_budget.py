"""HubSpot's 10-second request budget is shared by all workers through the database.

Each "worker" here has what a worker process has: its own HTTP client, HubSpot client and
budget; only the database is shared. The window is one second instead of ten, to keep the test
short; the fake HubSpot enforces the same window and refuses with 429 beyond it.
"""

import asyncio

import httpx
import pytest
from delivery.harness import Env

from syncgate.connections.budget import SLACK_SECONDS, SharedWindow
from syncgate.platforms.hubspot.client import HubSpotClient, RequestBudget, TransientError

LIMIT = 8
WINDOW = 1.0


def worker_client(env: Env, http: httpx.AsyncClient) -> HubSpotClient:
    window = SharedWindow(env.session_factory, "hubspot", LIMIT, WINDOW)
    client = HubSpotClient.from_settings(env.settings, http, RequestBudget(burst=window))
    assert client is not None
    return client


async def test_two_workers_together_never_exceed_hubspots_request_budget(env: Env) -> None:
    env.hubspot.burst_limit, env.hubspot.burst_window = LIMIT, WINDOW
    contact_id = env.hubspot.add_contact(email="budget@example.com")

    async def work(client: HubSpotClient) -> None:
        for _ in range(10):
            assert await client.get_contact(contact_id, ["email"]) is not None

    async with httpx.AsyncClient() as first, httpx.AsyncClient() as second:
        await asyncio.gather(work(worker_client(env, first)), work(worker_client(env, second)))

    calls = env.hubspot.requests_to(f"/crm/v3/objects/contacts/{contact_id}")
    assert [c.status for c in calls] == [200] * 20  # HubSpot never had to refuse one
    arrivals = sorted(c.at for c in calls)
    for first_call, call_after_limit in zip(arrivals, arrivals[LIMIT:], strict=False):
        assert call_after_limit - first_call >= WINDOW
    # Shared, yet not needlessly slow: 20 calls take about two and a half windows.
    assert arrivals[-1] - arrivals[0] <= 3 * (WINDOW + SLACK_SECONDS)


async def test_a_long_pause_that_one_worker_was_told_holds_every_worker_back(env: Env) -> None:
    env.hubspot.rate_limit_next(1, policy="DAILY", retry_after=3600)  # not "until the hour"
    contact_id = env.hubspot.add_contact(email="daily@example.com")
    async with httpx.AsyncClient() as first, httpx.AsyncClient() as second:
        told, other = worker_client(env, first), worker_client(env, second)
        with pytest.raises(TransientError) as daily:
            await told.get_contact(contact_id, ["email"])
        assert daily.value.outage

        with pytest.raises(TransientError) as paused:
            await other.get_contact(contact_id, ["email"])

    assert paused.value.outage and "paused" in paused.value.message
    assert len(env.hubspot.requests_to(f"/crm/v3/objects/contacts/{contact_id}")) == 1
