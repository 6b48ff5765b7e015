"""Helpers for the admin API tests: seeding contacts through the store layer."""

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.api import CountRows, Properties, Seed, SeedMany
from support.store import upsert_hubspot_contact


@pytest.fixture
def seed_many(session_factory: async_sessionmaker[AsyncSession]) -> SeedMany:
    """Store HubSpot contacts (one property dict each) in one transaction; returns their ids."""
    numbers = itertools.count(1)

    async def seed_many(contacts: Sequence[Properties]) -> list[int]:
        async with session_factory() as session, session.begin():
            ids = []
            for properties in contacts:
                hubspot_id = f"hs-{next(numbers)}"
                ids.append(await upsert_hubspot_contact(session, hubspot_id, properties, 1_000))
            return ids

    return seed_many


@pytest.fixture
def seed(seed_many: SeedMany) -> Seed:
    """Store one HubSpot contact: `await seed("a@example.com", country="France")`."""

    async def seed(email: str | None = None, **properties: str | None) -> int:
        values: dict[str, str | None] = {"email": email} if email is not None else {}
        (contact_id,) = await seed_many([{**values, **properties}])
        return contact_id

    return seed


@pytest.fixture
def count_rows(session_factory: async_sessionmaker[AsyncSession]) -> CountRows:
    async def count_rows(model: Any) -> int:
        async with session_factory() as session:
            return await session.scalar(select(func.count()).select_from(model)) or 0

    return count_rows
