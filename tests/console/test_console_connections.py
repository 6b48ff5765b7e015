"""The connections panel of Sync health: each platform's state, what waits, the last call that
worked, the last error and the daily API allowance; an alert while a platform is unavailable."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from console.helpers import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.connections.models import Breaker, PlatformStatus
from syncgate.delivery.models import Delivery

AT = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


@pytest.fixture
def console_settings(console_settings: Settings) -> Settings:
    return console_settings.model_copy(
        update={
            "salesforce_client_id": "sf-id",
            "salesforce_client_secret": "sf-secret",
            "hubspot_access_token": "hs-token",
        }
    )


async def add_rows(factory: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    async with factory() as session, session.begin():
        session.add_all(rows)


async def test_an_unavailable_platform_is_announced_with_what_waits(
    console: Console,
    seed: Callable[..., Any],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    contact = await seed("ada@example.com")
    await add_rows(
        session_factory,
        PlatformStatus(
            platform="salesforce",
            breaker=Breaker.OPEN,
            consecutive_failures=5,
            opened_at=AT,
            next_probe_at=datetime(2026, 11, 30, 9, 20, tzinfo=UTC),
            last_error="SERVER_UNAVAILABLE: Server temporarily unavailable (HTTP 503)",
            last_error_at=AT,
        ),
        PlatformStatus(
            platform="hubspot",
            last_success_at=AT,
            api_used=200_000,
            api_allowed=250_000,
            api_usage_at=AT,
        ),
        Delivery(target="salesforce", operation="update", contact_id=contact, values={}),
    )

    page = (await console.get("/console/health")).text

    alert = page.split('role="alert">')[1].split("</div>")[0]
    assert "Salesforce unavailable since 2026-11-30 09:15:00 UTC, 1 waiting." in alert
    assert "no delivery spends an attempt" in alert
    assert "(next 2026-11-30 09:20:00 UTC)" in alert
    panel = page.split('id="connections-heading"')[1].split("</section>\n</section>")[0]
    hubspot, salesforce = panel.split('id="connection-hubspot"')[1].split(
        'id="connection-salesforce"'
    )
    assert "Unavailable" in salesforce and "SERVER_UNAVAILABLE" in salesforce
    assert "Available" in hubspot and "HubSpot available, 0 waiting." in hubspot
    assert "200,000 of 250,000 (80.0 %)" in hubspot
    assert "jobs stop at 75 %, deliveries at 95 %" in hubspot
    assert "Waiting (resync, import, backfill)" in hubspot  # 80 % is past the jobs' 75 %


async def test_with_both_platforms_available_there_is_no_alert(console: Console) -> None:
    page = (await console.get("/console/health")).text
    assert 'class="errors" role="alert"' not in page
    assert "Salesforce available, 0 waiting." in page
    assert page.count("not reported") == 2
