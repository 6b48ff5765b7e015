"""Sync health: decisions by kind and direction, deliveries, latency, retry and contact lookup."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from console.helpers import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.console.health import histogram_quantile, percentile
from syncgate.delivery.models import Delivery, DeliveryStatus
from syncgate.models import utc_now
from syncgate.sync import preferences, segments
from syncgate.sync.models import DecisionRecord, SegmentType

Seed = Callable[..., Any]


@pytest.fixture
def add(session_factory: async_sessionmaker[AsyncSession]) -> Callable[..., Any]:
    async def add(*rows: Any) -> None:
        async with session_factory() as session, session.begin():
            session.add_all(rows)

    return add


def delivery(contact_id: int, status: str, **fields: Any) -> Delivery:
    return Delivery(
        target=fields.pop("target", "salesforce"),
        operation="update",
        contact_id=contact_id,
        values={"email": "x"},
        status=status,
        **fields,
    )


async def statuses(factory: async_sessionmaker[AsyncSession]) -> dict[int, str]:
    async with factory() as session:
        return {d.id: d.status for d in (await session.scalars(select(Delivery))).all()}


async def test_health_page_counts_the_last_24_hours(
    console: Console, seed: Seed, add: Callable[..., Any]
) -> None:
    contact = await seed("ada@example.com")
    now = utc_now()
    await add(
        *[
            DecisionRecord(
                direction="hubspot_to_salesforce", decision="forwarded", contact_id=contact
            )
            for _ in range(3)
        ],
        DecisionRecord(
            direction="salesforce_to_hubspot", decision="skipped_not_in_segment", contact_id=contact
        ),
        # Older than the window: not counted.
        DecisionRecord(
            direction="salesforce_to_hubspot",
            decision="ignored",
            contact_id=contact,
            at=now - timedelta(hours=25),
        ),
        delivery(contact, DeliveryStatus.PENDING),
        delivery(contact, DeliveryStatus.IN_FLIGHT, target="hubspot"),
    )
    page = (await console.get("/console/health")).text
    row = page.split("Forwarded <code")[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in row and '<td class="num">0</td>' in row
    row = page.split("Skipped: not in the segment <code")[1].split("</tr>")[0]
    assert row.count('<td class="num">') == 2 and '<td class="num">1</td>' in row
    ignored = page.split("Ignored <code")[1].split("</tr>")[0]
    assert '<td class="num">1</td>' not in ignored
    assert '<p class="figure">2</p>' in page  # pending + in flight
    assert "In flight" in page and "Pending" in page
    assert "No dead deliveries." in page


async def test_dead_deliveries_are_grouped_by_the_platforms_message(
    console: Console, seed: Seed, add: Callable[..., Any]
) -> None:
    ada = await seed("ada@example.com")
    bo = await seed("bo@example.com")
    duplicate = "DUPLICATES_DETECTED: Use one of these records?"
    await add(
        delivery(ada, DeliveryStatus.DEAD, last_error=duplicate, attempts=1),
        delivery(bo, DeliveryStatus.DEAD, last_error=duplicate, attempts=1),
        delivery(
            bo, DeliveryStatus.DEAD, last_error="INVALID_EMAIL_ADDRESS: bad", target="hubspot"
        ),
    )
    page = (await console.get("/console/health")).text
    assert "Retry all dead (3)" in page
    assert page.count('class="dead-group"') == 2
    first = page.split('class="dead-group"')[1]
    assert "2 to Salesforce" in first and "DUPLICATES_DETECTED: Use one of these records?" in first
    assert "ada@example.com" in first and "bo@example.com" in first
    second = page.split('class="dead-group"')[2]
    assert "1 to HubSpot" in second and "HubSpot said:" in second


async def test_retry_one_and_retry_all(
    console: Console,
    seed: Seed,
    add: Callable[..., Any],
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    ada = await seed("ada@example.com")
    await add(
        delivery(ada, DeliveryStatus.DEAD, last_error="boom", attempts=10),
        delivery(ada, DeliveryStatus.DEAD, last_error="boom", attempts=10),
        delivery(ada, DeliveryStatus.DONE),
    )
    first, second, done = sorted(await statuses(session_factory))

    response = await console.post(f"/console/deliveries/{first}/retry")
    assert response.headers["location"] == "/console/health"
    page = await console.follow(response)
    assert f"Delivery {first} is pending again" in page.text
    assert (await statuses(session_factory))[first] == DeliveryStatus.PENDING

    refused = await console.follow(await console.post(f"/console/deliveries/{done}/retry"))
    assert f"delivery {done} is done; only dead ones retry" in refused.text
    missing = await console.follow(await console.post("/console/deliveries/999/retry"))
    assert "delivery 999 does not exist" in missing.text

    response = await console.post("/console/deliveries/retry-dead")
    page = await console.follow(response)
    assert "1 dead delivery is pending again" in page.text
    assert (await statuses(session_factory))[second] == DeliveryStatus.PENDING
    again = await console.follow(await console.post("/console/deliveries/retry-dead"))
    assert "There were no dead deliveries to retry." in again.text


async def test_retry_from_the_contact_page_returns_there(
    console: Console, seed: Seed, add: Callable[..., Any]
) -> None:
    ada = await seed("ada@example.com")
    await add(delivery(ada, DeliveryStatus.DEAD, last_error="REQUIRED_FIELD_MISSING: LastName"))
    page = await console.get("/console/contacts", params={"email": "ADA@example.com "})
    assert "REQUIRED_FIELD_MISSING: LastName" in page.text
    back = "/console/contacts?email=ada%40example.com"
    assert f'name="back" value="{back}"' in page.text
    response = await console.post("/console/deliveries/1/retry", {"back": back})
    assert response.headers["location"] == back
    evil = await console.post("/console/deliveries/1/retry", {"back": "https://evil.example/"})
    assert evil.headers["location"] == "/console"


async def test_latency_comes_from_the_database_and_ignores_jobs(
    console: Console, seed: Seed, add: Callable[..., Any]
) -> None:
    ada = await seed("ada@example.com")
    now = utc_now()
    rows = [
        delivery(
            ada,
            DeliveryStatus.DONE,
            first_received_at=now - timedelta(seconds=seconds + 60),
            delivered_at=now - timedelta(seconds=60),
        )
        for seconds in (0.2, 0.3, 0.4, 0.5, 12.0)
    ]
    job = delivery(
        ada,
        DeliveryStatus.DONE,
        first_received_at=now - timedelta(hours=2),
        delivered_at=now,
        source_event="job:1",
    )
    old = delivery(
        ada,
        DeliveryStatus.DONE,
        first_received_at=now - timedelta(hours=30),
        delivered_at=now - timedelta(hours=26),
    )
    await add(*rows, job, old)
    page = (await console.get("/console/health")).text
    latency = page.split('id="latency-heading"')[1].split("</section>")[0]
    assert "<dt>p50</dt><dd>400 ms</dd>" in latency
    assert "<dt>p99</dt><dd>12.0 s</dd>" in latency
    assert "Over 5 deliveries delivered" in latency


def test_percentiles() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0], 0.99) == 1.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)
    buckets = [(0.1, 0.0), (0.5, 50.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.3)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.99)
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(1.0, 1.0), (float("inf"), 10.0)]) == 1.0


async def test_contact_lookup_explains_the_sync_status(
    console: Console, seed: Seed, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed("ada@example.com", lifecyclestage="lead")
    customers = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
    async with session_factory() as session, session.begin():
        segment = await segments.create_segment(session, "Customers", SegmentType.ACTIVE, customers)
        await preferences.set_inclusion_segment(session, segment.id)
    page = await console.get("/console/contacts", params={"email": "ada@example.com"})
    assert page.status_code == 200
    assert "✕</span> Does not sync" in page.text
    assert "Not in the inclusion segment &#39;Customers&#39;" in page.text
    assert "lifecyclestage is &#39;lead&#39;" in page.text

    nobody = await console.get("/console/contacts", params={"email": "nobody@example.com"})
    assert "No contact with the email <strong>nobody@example.com</strong>" in nobody.text
    blank = await console.get("/console/contacts", params={"email": " "})
    assert blank.status_code == 422 and "enter the address to look up" in blank.text
    long = await console.get("/console/contacts", params={"email": "a" * 400})
    assert long.status_code == 422 and "at most 320 characters" in long.text
    empty = await console.get("/console/contacts")
    assert empty.status_code == 200 and "Look up" in empty.text
