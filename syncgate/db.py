"""Engines and sessions; every difference between SQLite and PostgreSQL lives here."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, Insert, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _driver_url(url: str, *, use_async: bool) -> URL:
    """Pick the driver for a plain URL, so `postgresql://user@host/db` works as written."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if use_async else "sqlite+pysqlite")
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE: writers queue up instead of failing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
        # when another writer got in between; taking the write lock up front avoids that.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sync_engine(url: str) -> Engine:
    engine = create_engine(_driver_url(url, use_async=False), pool_pre_ping=True)
    if is_sqlite(url):
        _configure_sqlite(engine)
    return engine


def create_db_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if not is_sqlite(url):
        kwargs |= {"pool_size": 10, "max_overflow": 10, "pool_timeout": 5}
        # The JIT costs far more to compile a segment's membership query than it saves (its
        # OR-ed subqueries are costed above every JIT threshold); nothing here runs long.
        kwargs["connect_args"] = {"options": "-c jit=off"}
    engine = create_async_engine(_driver_url(url, use_async=True), **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine.sync_engine)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work for worker code: commit on success, roll back on error."""
    async with factory() as session, session.begin():
        yield session


def dialect_insert(dialect: Dialect, table: Any) -> Any:
    """An INSERT into `table` that supports `ON CONFLICT` in `dialect`."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignoring_conflicts(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]] | None = None
) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` in the session's dialect (returns the statement).

    Without `rows`, pass them to `session.execute(statement, rows)`: the statement's compiled
    form is then cached, where a multi-row VALUES literal is compiled anew every time.
    """
    statement = dialect_insert(session.get_bind().dialect, table)
    if rows is not None:
        statement = statement.values(rows)
    return statement.on_conflict_do_nothing()


def insert_ignoring_conflicts_statement(dialect: Dialect, table: Any) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` into `table` for `dialect`, to run on a connection.

    Its result's `rowcount` is the number of rows inserted (also for an executemany): inline,
    so PostgreSQL gets no implicit `RETURNING id`, and with the count kept, as SQLAlchemy drops
    it for inserts on psycopg otherwise.
    """
    statement = dialect_insert(dialect, table).on_conflict_do_nothing().inline()
    return statement.execution_options(preserve_rowcount=True)  # type: ignore[no-any-return]
