"""Migrations are safe to run concurrently on PostgreSQL: serve replicas, workers and a migrate
job may all upgrade one fresh database at once (an advisory lock runs them one at a time)."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from syncgate.db import create_sync_engine
from syncgate.migrate import MIGRATION_LOCK_KEY, current_revision, head_revision

pytestmark = pytest.mark.skipif(
    not os.environ.get("SYNCGATE_TEST_DATABASE_URL", "").startswith("postgres"),
    reason="PostgreSQL only (set SYNCGATE_TEST_DATABASE_URL)",
)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    server = make_url(os.environ["SYNCGATE_TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    name = f"syncgate_migrate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def migrate(url: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCGATE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "syncgate", "migrate"],
        cwd=cwd,
        env={**env, "SYNCGATE_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def revision(url: str) -> str | None:
    engine = create_sync_engine(url)
    with engine.connect() as connection:
        found = current_revision(connection)
    engine.dispose()
    return found


def test_concurrent_migrations_of_a_fresh_database_all_succeed(
    fresh_database: str, tmp_path: Path
) -> None:
    processes = [migrate(fresh_database, tmp_path) for _ in range(3)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert revision(fresh_database) == head_revision(fresh_database)
    # The first one to get the lock migrated; the others found the database at head.
    applied = [out.count("database migrated to") for out in outputs]
    assert sorted(applied)[:2] == [0, 0] and max(applied) > 0


def test_a_migration_waits_for_the_lock_another_migration_holds(
    fresh_database: str, tmp_path: Path
) -> None:
    holder = create_sync_engine(fresh_database)
    with holder.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        waiting = migrate(fresh_database, tmp_path)
        time.sleep(3)
        assert waiting.poll() is None
        assert revision(fresh_database) is None
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    holder.dispose()
    assert waiting.wait(timeout=60) == 0
    assert revision(fresh_database) == head_revision(fresh_database)
