"""Fixtures of the fuzz tests: the app with both webhook intakes enabled, on the test database."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fuzz.harness import ADMIN_TOKEN, BASE_URL, Intake, fuzz_settings

from syncgate.main import create_app


@pytest.fixture
async def intake(database_url: str) -> AsyncIterator[Intake]:
    """One app for all examples of a test: the store is tolerant of what earlier ones left."""
    settings = fuzz_settings(database_url)
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as http:
            intake = Intake(settings, http, app.state.session_factory)
            await intake.set_up_gate()
            yield intake
