"""Schemathesis over the app's own /openapi.json (CONTRACT.md §6): every operation, in-process.

Each operation runs against a freshly seeded store (conftest wipes it after every test); within
an operation the examples share it, so the API must cope with whatever earlier ones left.
"""

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fuzz.harness import ADMIN_TOKEN, fuzz_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.store import upsert_hubspot_contact

from syncgate.config import Settings
from syncgate.db import create_db_engine, create_session_factory
from syncgate.delivery.models import Delivery, DeliveryStatus
from syncgate.jobs.models import Job, JobKind
from syncgate.main import create_app
from syncgate.sync.models import DecisionRecord, SegmentType
from syncgate.sync.segments import create_segment

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def _fetch_openapi() -> dict[str, Any]:
    """What GET /openapi.json serves (it needs no database, so no lifespan runs here)."""
    app = create_app(Settings(database_url="sqlite://", _env_file=None), run_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/openapi.json")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


schema = schemathesis.openapi.from_dict(asyncio.run(_fetch_openapi()))


async def _seed(database_url: str) -> None:
    """A few rows of each kind, so small ids hit real resources (and their 2xx answers)."""
    engine = create_db_engine(database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            contacts = [
                await upsert_hubspot_contact(
                    session, f"hs-{n}", {"email": f"c{n}@example.com", "country": "France"}, 1_000
                )
                for n in range(1, 4)
            ]
            await create_segment(
                session,
                "active",
                SegmentType.ACTIVE,
                {"property": "country", "operator": "eq", "value": "France"},
            )
            await create_segment(session, "static", SegmentType.STATIC, None)
            session.add_all(
                [
                    Delivery(
                        target="salesforce",
                        operation="update",
                        contact_id=contacts[0],
                        values={"email": "c1@example.com"},
                        status=DeliveryStatus.DEAD,
                        attempts=10,
                        last_error="boom",
                        history=[],
                    ),
                    Job(kind=JobKind.HUBSPOT_BACKFILL, params={}, cursor={}),
                    DecisionRecord(
                        direction="hubspot_to_salesforce",
                        decision="forwarded",
                        contact_id=contacts[0],
                        source_event="inbox:1",
                        detail={},
                    ),
                ]
            )
    finally:
        await engine.dispose()


@pytest.fixture
def app(database_url: str) -> Iterator[Any]:
    asyncio.run(_seed(database_url))
    # Both webhook intakes on (so their refusals are fuzzed too), the Salesforce one without a
    # token, so that schemathesis gets past it.
    config = fuzz_settings(database_url).model_copy(update={"salesforce_webhook_token": None})
    yield create_app(config, run_worker=False)
    # Schemathesis runs the lifespan on its own event loop (and keeps it); stop it so that the
    # engine is disposed before conftest wipes the tables.
    shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_admin_api(case: schemathesis.Case[Any], app: Any) -> None:
    # Our headers go on top of the generated ones; schemathesis' coverage phase still sends
    # requests without a valid token, which must get the documented 401.
    case.call_and_validate(app=app, headers=AUTH, checks=CHECKS)
