"""The SQLite engine's statements: one hand-off each to the connection's thread, with the same
answers SQLAlchemy gets from aiosqlite's own cursors."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from syncgate.db import create_db_engine


@pytest.fixture
async def connection(tmp_path: Path) -> AsyncIterator[AsyncConnection]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'driver.db'}")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
            await connection.commit()
            yield connection
    finally:
        await engine.dispose()


async def _hand_offs(connection: AsyncConnection) -> list[Any]:
    """Record every call the connection sends to its thread from now on."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    sent: list[Any] = []
    queue = driver._execute

    async def counted(function: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(function)
        return await queue(function, *args, **kwargs)

    driver._execute = counted
    return sent


async def test_a_query_and_its_rows_take_one_hand_off(connection: AsyncConnection) -> None:
    await connection.execute(text("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')"))
    sent = await _hand_offs(connection)

    result = await connection.execute(text("SELECT id, v FROM t ORDER BY id"))

    assert len(sent) == 1
    assert list(result.keys()) == ["id", "v"]
    assert result.all() == [(1, "a"), (2, "b"), (3, "c")]


async def test_writes_report_their_row_counts_and_row_ids(connection: AsyncConnection) -> None:
    inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
    assert inserted.lastrowid == 1
    await connection.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
    sent = await _hand_offs(connection)

    updated = await connection.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))

    assert len(sent) == 1
    assert updated.rowcount == 2
    assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 3


async def test_a_failing_statement_raises_and_leaves_the_connection_usable(
    connection: AsyncConnection,
) -> None:
    await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
    with pytest.raises(IntegrityError):
        await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
    await connection.rollback()

    assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 0


async def test_a_rollback_outside_a_transaction_takes_no_hand_off(
    connection: AsyncConnection,
) -> None:
    await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
    await connection.commit()
    sent = await _hand_offs(connection)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None

    await driver.rollback()

    assert sent == []
    assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 1


async def test_a_cursor_opens_awaited_or_as_a_context(connection: AsyncConnection) -> None:
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None

    awaited = await driver.cursor()
    await awaited.execute("SELECT 1")
    assert await awaited.fetchall() == [(1,)]
    async with driver.cursor() as entered:
        await entered.execute("SELECT 2")
        assert await entered.fetchall() == [(2,)]


async def test_a_streamed_read_takes_the_rows_in_order_one_or_a_few_at_a_time(
    connection: AsyncConnection,
) -> None:
    await connection.execute(text("INSERT INTO t (v) VALUES ('1'), ('2'), ('3'), ('4'), ('5')"))
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None

    cursor = driver.cursor()
    await cursor.execute("SELECT id FROM t ORDER BY id")
    assert await cursor.fetchone() == (1,)
    assert await cursor.fetchmany(2) == [(2,), (3,)]
    assert await cursor.fetchmany() == [(4,)]  # arraysize
    assert await cursor.fetchall() == [(5,)]
    assert await cursor.fetchone() is None
    assert await cursor.fetchmany(3) == []
