"""Engines and sessions; every difference between SQLite and PostgreSQL lives here (SQLite's
connections come from `sqlite_driver`)."""

import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Executable,
    Insert,
    Row,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    text,
    update,
)
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from syncgate import sqlite_driver
from syncgate.encoding import to_json

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A host that drops packets must not hold start-up (or a migration) forever.
POSTGRES_CONNECT_TIMEOUT_S = 10


def _driver_url(url: str, *, use_async: bool) -> URL:
    """Pick the driver for a plain URL, so `postgresql://user@host/db` works as written."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "not a database URL; expected e.g. postgresql://user:password@host/db"
            " or sqlite:///./syncgate.db"
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if use_async else "sqlite+pysqlite")
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def check_database_url(url: str) -> None:
    """Raise ValueError (without the password) unless the URL names a supported database."""
    _driver_url(url, use_async=False)


def describe_database(url: str) -> str:
    """Where the database is, for messages: host and port (or the SQLite file), no password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database or ':memory:'}"
    host = parsed.host or "localhost (socket)"
    return f"{host}:{parsed.port or 5432}" + (f"/{parsed.database}" if parsed.database else "")


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


# JSON columns (delivery values, histories, the Salesforce mirror) are encoded in C. They are
# decoded by the standard library, which keeps an integer past 64 bits (a hostile payload's)
# as it was written, where orjson would turn it into a float.
_JSON_CODEC: dict[str, Any] = {"json_serializer": to_json, "json_deserializer": json.loads}


def create_sync_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True, **_JSON_CODEC}
    if not is_sqlite(url):
        kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    engine = create_engine(_driver_url(url, use_async=False), **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine)
    return engine


def create_db_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = dict(_JSON_CODEC)
    if not is_sqlite(url):
        # A file never drops a connection; a server does, and the pool should notice first.
        kwargs |= {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_timeout": 5}
        # The JIT costs far more to compile a segment's membership query than it saves (its
        # OR-ed subqueries are costed above every JIT threshold); nothing here runs long.
        kwargs["connect_args"] = {
            "options": "-c jit=off",
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
        }
    engine = create_async_engine(_driver_url(url, use_async=True), **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine.sync_engine)
        event.listen(engine.sync_engine, "do_connect", _connect_one_hop_sqlite)
    return engine


def _connect_one_hop_sqlite(dialect: Dialect, _record: Any, args: Any, kwargs: Any) -> Any:
    return dialect.loaded_dbapi.connect(*args, async_creator_fn=sqlite_driver.connect, **kwargs)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


def lost_a_conflict(error: BaseException) -> bool:
    """PostgreSQL rolled the transaction back to break a deadlock or a serialization conflict:
    running it again can succeed (SQLite's single writer has neither)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) in {"40P01", "40001"}


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work for worker code: commit on success, roll back on error."""
    async with factory() as session, session.begin():
        yield session


def among(dialect: Dialect, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`. On PostgreSQL `column = ANY(:array)`: one parameter, so the
    statement's text is the same for any number of values and psycopg prepares it once."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


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


# -- bulk writes -------------------------------------------------------------------------------
#
# psycopg's executemany sends one statement per row (pipelined), with a few microseconds of
# Python for every row and value. On PostgreSQL a bulk write instead sends all rows as one JSON
# document (encoded in C) that `json_populate_recordset` turns back into rows of the table's own
# types: one parameter, and a statement text that never changes. On SQLite the statement is
# compiled once by SQLAlchemy and its rows go to sqlite3's executemany (which runs in C) as
# tuples, converted by the columns' own bind processors: SQLAlchemy's executemany costs several
# times more Python per row.

_BULK: dict[tuple[Any, ...], Executable] = {}
_MANY: dict[tuple[Any, ...], "_Many"] = {}


@dataclass(frozen=True)
class _Many:
    """A statement compiled for SQLite's executemany, and how to turn a row into its tuple."""

    sql: str
    keys: tuple[str | None, ...]  # the row key of each `?`; None: the column's own default
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: tuple[Any, ...]  # ColumnDefault for the None keys

    @classmethod
    def compile(
        cls, dialect: Dialect, table: Table, statement: Any, prefix: str, onupdate: bool
    ) -> "_Many":
        compiled = statement.compile(dialect=dialect)
        keys: list[str | None] = []
        processors: list[Callable[[Any], Any] | None] = []
        defaults: list[Any] = []
        for name in compiled.positiontup:
            given = name.startswith(prefix)
            column = table.c[name.removeprefix(prefix)]
            keys.append(column.key if given else None)
            default = None if given else (column.onupdate if onupdate else column.default)
            if not given and default is None:
                raise ValueError(f"no value for {table.name}.{column.key}")
            defaults.append(default)
            processors.append(column.type.dialect_impl(dialect).bind_processor(dialect))
        return cls(compiled.string, tuple(keys), tuple(processors), tuple(defaults))

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows as tuples, converted column by column: a default is converted once, and a
        value shared by consecutive rows (a batch's `now`) once per run."""
        columns: list[Sequence[Any]] = []
        for key, process, default in zip(self.keys, self.processors, self.defaults, strict=True):
            if key is None:
                value = default.arg(None) if default.is_callable else default.arg
                columns.append([value if process is None else process(value)] * len(rows))
            elif process is None:
                columns.append([row[key] for row in rows])
            else:
                columns.append(_converted(process, [row[key] for row in rows]))
        return list(zip(*columns, strict=True))


def _converted(process: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    converted: list[Any] = []
    last: Any = converted  # no value is this list
    result = None
    for value in values:
        if value is not last:
            last, result = value, process(value)
        converted.append(result)
    return converted


async def _sqlite_executemany(
    connection: AsyncConnection, many: _Many, rows: Sequence[dict[str, Any]]
) -> None:
    raw = await connection.get_raw_connection()
    await raw.driver_connection.executemany(many.sql, many.parameters(rows))  # type: ignore[union-attr]


def _recordset(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    # Datetimes are written as ISO 8601, which PostgreSQL reads back into timestamptz.
    return {"rows": to_json(rows)}


def _rows_of(table: Table) -> str:
    return f"json_populate_recordset(NULL::{table.name}, CAST(:rows AS json))"


def _bulk_insert(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    update_columns: tuple[str, ...] | None,
    returning: tuple[str, ...],
) -> Executable:
    key = ("insert", dialect.name, table.name, columns, conflict, update_columns, returning)
    statement = _BULK.get(key)
    if statement is not None:
        return statement
    if dialect.name == "postgresql":
        names = ", ".join(columns)
        sql = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {_rows_of(table)}"  # noqa: S608
        if conflict:
            sql += f" ON CONFLICT ({', '.join(conflict)}) DO "
            sql += (
                "UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update_columns)
                if update_columns
                else "NOTHING"
            )
        if returning:
            sql += f" RETURNING {', '.join(returning)}"
        clause = text(sql)
        statement = clause.columns(*(table.c[c] for c in returning)) if returning else clause
    else:
        built = _on_conflict(dialect_insert(dialect, table), conflict, update_columns)
        statement = built.returning(*(table.c[c] for c in returning)) if returning else built
    _BULK[key] = statement
    return statement


async def insert_rows(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str] = (),
    update_columns: Sequence[str] | None = None,
    returning: Sequence[str] = (),
) -> list[Row[Any]]:
    """Insert rows (all with the same keys) in one statement. With `conflict` keys: ON CONFLICT
    DO NOTHING, or DO UPDATE of `update_columns`. The rows of `returning` come in no order."""
    if not rows:
        return []
    dialect = connection.dialect
    columns = tuple(rows[0])
    updated = tuple(update_columns) if update_columns else None
    if dialect.name != "postgresql" and not returning:
        await _sqlite_executemany(
            connection, _sqlite_insert(dialect, table, columns, tuple(conflict), updated), rows
        )
        return []
    statement = _bulk_insert(dialect, table, columns, tuple(conflict), updated, tuple(returning))
    postgresql = dialect.name == "postgresql"
    result = await connection.execute(statement, _recordset(rows) if postgresql else rows)
    return list(result) if returning else []


def _sqlite_insert(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    update_columns: tuple[str, ...] | None,
) -> _Many:
    key = ("insert", table.name, columns, conflict, update_columns)
    many = _MANY.get(key)
    if many is None:
        built = dialect_insert(dialect, table).values({c: bindparam(f"b_{c}") for c in columns})
        built = _on_conflict(built, conflict, update_columns)
        many = _MANY[key] = _Many.compile(dialect, table, built, "b_", onupdate=False)
    return many


def _on_conflict(
    built: Any, conflict: tuple[str, ...], update_columns: tuple[str, ...] | None
) -> Any:
    """SQLite's ON CONFLICT clause of an `insert_rows` statement."""
    if conflict and update_columns:
        return built.on_conflict_do_update(
            index_elements=list(conflict), set_={c: built.excluded[c] for c in update_columns}
        )
    if conflict:
        return built.on_conflict_do_nothing(index_elements=list(conflict))
    return built


async def update_rows(
    connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], key: str = "id"
) -> None:
    """Update rows by `key`, each with the values of the other keys (the same for all rows)."""
    if not rows:
        return
    columns = tuple(rows[0])
    if connection.dialect.name != "postgresql":
        many = _sqlite_update(connection.dialect, table, columns, key)
        await _sqlite_executemany(connection, many, rows)
        return
    cache_key = ("update", table.name, columns, key)
    statement = _BULK.get(cache_key)
    if statement is None:
        sets = ", ".join(f"{c} = r.{c}" for c in columns if c != key)
        statement = _BULK[cache_key] = text(
            f"UPDATE {table.name} SET {sets} FROM {_rows_of(table)} AS r "  # noqa: S608
            f"WHERE {table.name}.{key} = r.{key}"
        )
    await connection.execute(statement, _recordset(rows))


def _sqlite_update(dialect: Dialect, table: Table, columns: tuple[str, ...], key: str) -> _Many:
    cache_key = ("update", table.name, columns, key)
    many = _MANY.get(cache_key)
    if many is None:
        changes = (
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({c: bindparam(f"b_{c}") for c in columns if c != key})
        )
        many = _MANY[cache_key] = _Many.compile(dialect, table, changes, "b_", onupdate=True)
    return many


async def copy_rows(
    connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert rows that cannot conflict (those of records this transaction created): COPY on
    PostgreSQL, the fastest way in; executemany on SQLite."""
    if not rows:
        return
    columns = tuple(rows[0])
    if connection.dialect.name != "postgresql":
        await insert_rows(connection, table, rows)
        return
    pick = itemgetter(*columns)
    values = pick if len(columns) > 1 else lambda row: (pick(row),)
    raw = await connection.get_raw_connection()
    async with raw.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        async with cursor.copy(sql) as copy:
            for row in rows:
                await copy.write_row(values(row))
