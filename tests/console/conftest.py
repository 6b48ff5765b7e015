"""Fixtures of the console tests: an ASGI client with the console's cookies, seeded contacts,
and (for the browser tests) the real service process with fake platforms."""

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console.helpers import TOKEN, Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.service import Service
from support.store import upsert_hubspot_contact

from syncgate.config import Settings
from syncgate.main import create_app


@pytest.fixture
def console_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=TOKEN,
        # Connected, so a resync is accepted (no worker runs here: nothing is called).
        salesforce_client_id="console-client-id",
        salesforce_client_secret="console-client-secret",
        _env_file=None,
    )


@pytest.fixture
async def anon(console_settings: Settings) -> AsyncIterator[Console]:
    """The console app with nobody signed in (no bearer token either)."""
    app = create_app(console_settings, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield Console(http, TOKEN)


@pytest.fixture
async def console(anon: Console) -> Console:
    """The console with an operator signed in."""
    response = await anon.sign_in()
    assert response.status_code == 303, response.text
    return anon


@pytest.fixture
def seed(session_factory: async_sessionmaker[AsyncSession]) -> Callable[..., Any]:
    """Store a HubSpot contact: `await seed("a@example.com", lifecyclestage="customer")`."""
    numbers = itertools.count(1)

    async def seed(email: str | None = None, **properties: str | None) -> int:
        values: dict[str, str | None] = {"email": email} if email is not None else {}
        async with session_factory() as session, session.begin():
            return await upsert_hubspot_contact(
                session, f"hs-{next(numbers)}", {**values, **properties}, 1_000
            )

    return seed


# --- the real service, for the browser tests (the pattern of tests/e2e/conftest.py) ----------


@pytest.fixture
def service(
    database_url: str,
    platform_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Service]:
    running = Service({**platform_env, "SYNCGATE_DATABASE_URL": database_url}, tmp_path).start()
    yield running
    running.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(running.logs()[-20000:])
