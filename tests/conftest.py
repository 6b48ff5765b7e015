"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when SYNCGATE_TEST_DATABASE_URL
is set), a clean slate per test, and an app wired to it."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from delivery.harness import Env, open_env
from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.db import create_db_engine, create_session_factory, create_sync_engine
from syncgate.main import create_app
from syncgate.migrate import upgrade_to_head
from syncgate.models_registry import Base

pytest_plugins = ["support.platforms"]

ADMIN_TOKEN = "test-admin-token-of-32-characters-or-more"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("SYNCGATE_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'syncgate-test.db'}"
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
def sync_engine(database_url: str) -> Iterator[Engine]:
    engine = create_sync_engine(database_url)
    yield engine
    engine.dispose()


def wipe(engine: Engine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    uses_database = {"sync_engine", "database_url"} & set(request.fixturenames)
    engine = request.getfixturevalue("sync_engine") if uses_database else None
    yield
    if engine is not None:
        wipe(engine)


@pytest.fixture(autouse=True)
def _rounds_are_processed_whole(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """A round that fails is processed again in halves and still gives the right result, so
    only this makes an error that events cause together visible."""
    yield
    if request.node.get_closest_marker("round_split") is None:
        assert "processing its halves apart" not in caplog.text


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_db_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, admin_token=ADMIN_TOKEN, _env_file=None)


@pytest.fixture
async def env(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Env]:
    """The real processing and delivery steps in process, with fresh fake platforms."""
    async with open_env(settings, session_factory) as env:
        yield env


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as http:
            yield http
