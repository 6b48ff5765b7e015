"""Fixtures of the in-process delivery tests: real database, real steps, fake platforms."""

from collections.abc import AsyncIterator

import pytest
from delivery.harness import Env, open_env
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings


@pytest.fixture
async def env(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Env]:
    async with open_env(settings, session_factory) as env:
        yield env
