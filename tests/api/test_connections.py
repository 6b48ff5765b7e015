"""Each platform's connection through the API and /metrics: "Salesforce unavailable since …,
N waiting", the last call that worked, the last error and the daily API allowance."""

import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.api import Seed

from syncgate.config import Settings
from syncgate.connections.models import Breaker, PlatformStatus
from syncgate.delivery.models import Delivery

OPENED = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Salesforce connected, HubSpot not."""
    return settings.model_copy(
        update={"salesforce_client_id": "sf-id", "salesforce_client_secret": "sf-secret"}
    )


@pytest.fixture
async def salesforce_down(session_factory: async_sessionmaker[AsyncSession], seed: Seed) -> None:
    contact_id = await seed("waiting@example.com")
    async with session_factory() as session, session.begin():
        session.add_all(
            [
                PlatformStatus(
                    platform="salesforce",
                    breaker=Breaker.OPEN,
                    consecutive_failures=5,
                    opened_at=OPENED,
                    next_probe_at=datetime(2026, 11, 30, 9, 20, tzinfo=UTC),
                    last_success_at=datetime(2026, 11, 30, 9, 14, tzinfo=UTC),
                    last_error="SERVER_UNAVAILABLE: Server temporarily unavailable (HTTP 503)",
                    last_error_at=datetime(2026, 11, 30, 9, 15, 30, tzinfo=UTC),
                    api_used=1200,
                    api_allowed=15000,
                    api_usage_at=OPENED,
                ),
                *(
                    Delivery(target=target, operation="update", contact_id=contact_id, values={})
                    for target in ("salesforce", "salesforce", "hubspot")
                ),
            ]
        )


@pytest.mark.usefixtures("salesforce_down")
async def test_connections_say_since_when_a_platform_is_unavailable_and_what_waits(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/connections")

    assert response.status_code == 200
    by_platform = {item["platform"]: item for item in response.json()["items"]}
    salesforce = by_platform["salesforce"]
    assert (
        salesforce["summary"] == "Salesforce unavailable since 2026-11-30 09:15:00 UTC, 2 waiting"
    )
    assert (salesforce["state"], salesforce["breaker"], salesforce["waiting"]) == (
        "unavailable",
        "open",
        2,
    )
    assert salesforce["unavailable_since"] == "2026-11-30T09:15:00Z"
    assert salesforce["last_error"].startswith("SERVER_UNAVAILABLE")
    assert salesforce["api_allowance"] == {
        "used": 1200,
        "allowed": 15000,
        "percent": 8.0,
        "at": "2026-11-30T09:15:00Z",
        "jobs_stop_at_percent": 75,
        "deliveries_stop_at_percent": 95,
    }
    assert salesforce["jobs_waiting"] is True
    hubspot = by_platform["hubspot"]
    assert (hubspot["state"], hubspot["summary"]) == (
        "not_configured",
        "HubSpot is not connected, 1 waiting",
    )


async def test_connections_need_the_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/connections", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


@pytest.mark.usefixtures("salesforce_down")
async def test_metrics_show_the_breaker_the_waiting_deliveries_and_the_allowance(
    client: httpx.AsyncClient,
) -> None:
    text = (await client.get("/metrics")).text

    def value(name: str, **labels: str) -> float:
        label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        match = re.search(rf"^{name}\{{{label_text}\}} (\S+)$", text, re.MULTILINE)
        assert match, f"no sample {name}{{{label_text}}}"
        return float(match.group(1))

    assert value("syncgate_platform_up", platform="salesforce") == 0
    assert value("syncgate_platform_unavailable_seconds", platform="salesforce") > 3600
    assert value("syncgate_deliveries_waiting", target="salesforce") == 2
    assert value("syncgate_deliveries_waiting", target="hubspot") == 1
    assert value("syncgate_platform_api_requests_used", platform="salesforce") == 1200
    assert value("syncgate_platform_api_requests_allowed", platform="salesforce") == 15000
